using System.Diagnostics;

namespace Runbox.EndToEnd.Tests.Faults;

/// <summary>Redis is the dispatch plane, not the record: restarting or even emptying it loses no accepted task.</summary>
public sealed class RedisFaultTests
{
    private const int Tasks = 24;

    /// <summary>
    /// A crash (SIGKILL) with the production setting appendfsync everysec: Redis may lose its last
    /// second of writes, and the reconciler restores them from the store.
    /// </summary>
    [Fact]
    public async Task RedisKilledAndRestartedMidLoad_NothingAcceptedIsLost()
    {
        var redisDir = TestEnvironment.NewDataDirectory();
        var port = RunboxProcess.FreePort();
        var redis = await StartRedisAsync(redisDir, port);
        try
        {
            var env = await FaultEnvironment.NewClusterAsync($"127.0.0.1:{port},abortConnect=false");
            await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "3"]);
            using var client = new ApiClient(server.BaseAddress);
            var ids = await SubmitAsync(client);
            await client.WaitForStatusAsync(ids[0], "completed", TimeSpan.FromSeconds(60));

            await KillRedisAsync(redis);
            redis = await StartRedisAsync(redisDir, port);

            await FaultEnvironment.AssertInvariantsAsync(client, ids);
            await AssertOutputsAsync(client, ids);
        }
        finally
        {
            await KillRedisAsync(redis);
        }
    }

    [Fact]
    public async Task RedisFlushedMidLoad_ReconcilerRebuildsTheQueue()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "3"]);
        using var client = new ApiClient(server.BaseAddress);
        var ids = await SubmitAsync(client);
        await client.WaitForStatusAsync(ids[0], "completed", TimeSpan.FromSeconds(60));

        // Everything under this cluster's prefix is gone: ready queues, leases, fences, counters.
        var prefix = env["Runbox__Queue__KeyPrefix"];
        var (host, port) = (TestEnvironment.Redis.Split(':')[0], TestEnvironment.Redis.Split(':')[1]);
        var keys = await FaultEnvironment.RunAsync("redis-cli", "-h", host, "-p", port, "--scan", "--pattern", $"*{prefix}*");
        foreach (var key in keys.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            await FaultEnvironment.RunAsync("redis-cli", "-h", host, "-p", port, "DEL", key);
        }

        await FaultEnvironment.AssertInvariantsAsync(client, ids);
        await AssertOutputsAsync(client, ids);
    }

    private static async Task<List<string>> SubmitAsync(ApiClient client)
    {
        var ids = new List<string>();
        for (var i = 0; i < Tasks; i++)
        {
            ids.Add((string)(await client.SubmitAsync(new { language = "bash", source = $"sleep 0.3; echo {i}" }))["id"]!);
        }
        return ids;
    }

    private static async Task AssertOutputsAsync(ApiClient client, List<string> ids)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            Assert.Equal($"{i}\n", (string?)(await client.GetAsync(ids[i]))["result"]!["stdout"]);
        }
    }

    private static async Task<Process> StartRedisAsync(string dir, int port)
    {
        var portText = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var process = Process.Start(new ProcessStartInfo("redis-server")
        {
            ArgumentList = { "--port", portText, "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction" },
            RedirectStandardOutput = true,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await FaultEnvironment.RunAsync("redis-cli", "-p", portText, "ping")).Trim() != "PONG")
        {
            Assert.True(DateTime.UtcNow < deadline, "redis-server did not start");
            await Task.Delay(100);
        }
        return process;
    }

    private static async Task KillRedisAsync(Process redis)
    {
        if (!redis.HasExited)
        {
            redis.Kill();
            await redis.WaitForExitAsync();
        }
        redis.Dispose();
    }
}
