using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests.Faults;

/// <summary>
/// Shared set-up for the fault tests: short leases so a lost worker is noticed in seconds, a fresh
/// PostgreSQL database and Redis key prefix per test, and the invariants every case ends with.
/// </summary>
public static class FaultEnvironment
{
    public static async Task<Dictionary<string, string>> NewClusterAsync(string? redis = null)
    {
        var database = "fault_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(TestEnvironment.Postgres))
        {
            await admin.OpenAsync(TestContext.Current.CancellationToken);
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
        return new Dictionary<string, string>
        {
            ["Runbox__Redis"] = redis ?? TestEnvironment.Redis,
            ["Runbox__Store"] = new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres) { Database = database }.ConnectionString,
            ["Runbox__Queue__KeyPrefix"] = "fault-" + Guid.NewGuid().ToString("N")[..8],
            ["Runbox__Queue__LeaseDuration"] = "00:00:03",
            ["Runbox__Queue__ReapGrace"] = "00:00:00.500",
            ["Runbox__Worker__HeartbeatInterval"] = "00:00:01",
            ["Runbox__Worker__ReapInterval"] = "00:00:01",
            // A killed leader's maintenance passes to a survivor within this (the default is 10 s).
            ["Runbox__Worker__MaintenanceTerm"] = "00:00:03",
            ["Runbox__Worker__ReconcileInterval"] = "00:00:02",
            ["Runbox__Worker__ShutdownGrace"] = "00:00:05",
        };
    }

    /// <summary>
    /// What must hold after any fault: every task settled as expected, its transitions a legal path
    /// through the state machine with one attempt at a time, and the queue holding nothing.
    /// </summary>
    public static async Task AssertInvariantsAsync(ApiClient client, IEnumerable<string> ids, string expectedStatus = "completed")
    {
        foreach (var id in ids)
        {
            var task = await client.WaitForAsync(id, t => (string?)t["status"] == expectedStatus, TimeSpan.FromSeconds(90));
            AssertLegalPath(task);
        }
        var queue = await client.WaitForEndpointAsync("/v1/queue", q => (long?)q["running"] == 0 && (long?)q["pending"] == 0, TimeSpan.FromSeconds(30));
        Assert.Equal(0, (long?)queue["running"]);
    }

    public static void AssertLegalPath(JsonNode task)
    {
        var allowed = new HashSet<(string?, string)>
        {
            (null, "pending"), ("pending", "running"), ("pending", "cancelled"), ("running", "completed"), ("running", "failed"),
            ("running", "timeout"), ("running", "cancelled"), ("failed", "pending"), ("timeout", "pending"),
        };
        var transitions = task["transitions"]!.AsArray();
        string? previous = null;
        var runs = 0;
        foreach (var transition in transitions)
        {
            var from = (string?)transition!["from"];
            var to = (string)transition["to"]!;
            Assert.True(from == previous, $"task {task["id"]}: transition from {from} after {previous}: {task}");
            Assert.True(allowed.Contains((from, to)), $"task {task["id"]}: illegal {from} -> {to}");
            if (to == "running")
            {
                runs++;
            }
            previous = to;
        }
        Assert.Equal(previous, (string?)task["status"]);
        Assert.Equal(runs, (int?)task["attempt"]);
    }

    /// <summary>No container or cgroup of these servers' sandboxes is left, by either runtime.</summary>
    public static async Task AssertNoLeftoversAsync(params string?[] prefixes)
    {
        // Each server's runtime keeps its state in its own data folder (sandbox/live/runtime, the --root
        // of every call); the default roots are listed too, in case a server ever fell back to them.
        var roots = Directory.EnumerateDirectories(Path.Combine(Path.GetTempPath(), "runbox-e2e"))
            .Select(data => Path.Combine(data, "sandbox", "live", "runtime"))
            .Where(Directory.Exists)
            .Append(null)
            .ToList();
        foreach (var prefix in prefixes.Where(p => p is not null))
        {
            foreach (var runtime in new[] { "crun", "runc" })
            {
                foreach (var root in roots)
                {
                    var list = root is null ? await RunAsync(runtime, "list", "-q") : await RunAsync(runtime, "--root", root, "list", "-q");
                    Assert.DoesNotContain(list.Split('\n'), line => line.StartsWith(prefix!, StringComparison.Ordinal));
                }
            }
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup"))
            {
                var parent = Path.Combine(hierarchy, "runbox");
                if (Directory.Exists(parent))
                {
                    Assert.Empty(Directory.GetDirectories(parent, prefix + "*"));
                }
            }
        }
    }

    /// <summary>A redis-server of the test's own on <paramref name="port"/>, killed when disposed.</summary>
    public static async Task<OwnedProcess> StartRedisAsync(int port, string? aofDirectory = null, params string[] extraBinds)
    {
        var portText = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--port", portText, "--bind", string.Join(' ', extraBinds.Prepend("127.0.0.1")), "--protected-mode", "no", "--save", "", "--maxmemory-policy", "noeviction" })
        {
            start.ArgumentList.Add(arg);
        }
        // With a folder: AOF as in production (everysec), so a crash may lose the last second of writes.
        foreach (var arg in aofDirectory is null ? ["--appendonly", "no"] : new[] { "--appendonly", "yes", "--appendfsync", "everysec", "--dir", aofDirectory })
        {
            start.ArgumentList.Add(arg);
        }
        var process = Process.Start(start)!;
        // Its last lines say why, should it not start (a port taken meanwhile, an address not up yet).
        var said = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => Keep(said, e.Data);
        process.ErrorDataReceived += (_, e) => Keep(said, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await RunAsync("redis-cli", "-p", portText, "ping")).Trim() != "PONG")
        {
            Assert.True(!process.HasExited && DateTime.UtcNow < deadline,
                $"redis-server on port {portText} (binds {string.Join(' ', extraBinds.Prepend("127.0.0.1"))}) did not start{(process.HasExited ? $", exit code {process.ExitCode}" : "")}:\n{string.Join('\n', said)}");
            await Task.Delay(100);
        }
        return new OwnedProcess(process);
    }

    private static void Keep(System.Collections.Concurrent.ConcurrentQueue<string> lines, string? line)
    {
        if (line is null)
        {
            return;
        }
        lines.Enqueue(line);
        while (lines.Count > 20)
        {
            lines.TryDequeue(out _);
        }
    }

    public static async Task<string> RunAsync(string file, params string[] args) => (await RunWithCodeAsync(file, args)).Output;

    public static async Task<(int Code, string Output)> RunWithCodeAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error);
    }
}

/// <summary>A helper server process the test owns: killed when disposed (once; a second dispose does nothing).</summary>
public sealed class OwnedProcess(Process process) : IDisposable
{
    private int disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit();
        }
        process.Dispose();
    }
}
