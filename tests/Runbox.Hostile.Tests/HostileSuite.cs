using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;

namespace Runbox.Hostile.Tests;

/// <summary>
/// The hostile suite: every attack of <see cref="HostileCases"/>, run as tenants would run them (all at
/// once, through the API of a real `runbox serve`), once on crun and once on runc. Each case asserts its
/// safe outcome on the task view; every case must also describe the program (never internal_error), never
/// show the server's secrets, and leave the service ready. The last test checks that nothing of any run
/// is left on the host and that an ordinary task still runs.
/// </summary>
/// <remarks>Run it alone: <c>dotnet test --project tests/Runbox.Hostile.Tests -c Release --no-build</c>.</remarks>
public abstract class HostileSuite(HostileServer server)
{
    public static TheoryData<string> Cases { get; } = [.. HostileCases.All.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Attack_IsContained(string name)
    {
        var hostile = HostileCases.Named(name);

        var view = await server.SettledAsync(name);

        Assert.True(view.Verdict() != "internal_error", $"{name}: a program made the service fail: {view}");
        Assert.DoesNotContain(HostileServer.Secret, view.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain(HostileServer.Mallory, view.ToJsonString(), StringComparison.Ordinal);
        hostile.Check(view, server);
        using var client = server.Client(HostileServer.Mallory);
        var (status, body, _) = await client.SendAsync(HttpMethod.Get, "/health/ready");
        Assert.True(status == HttpStatusCode.OK, $"not ready after {name}: {body}");
    }

    [Fact]
    public async Task AfterEveryAttack_NothingIsLeftAndAnOrdinaryTaskRuns()
    {
        await server.AllSettledAsync();
        using var client = server.Client(HostileServer.Alice);

        var canary = await client.SubmitAsync(new { language = "python", source = "print(input()[::-1])", stdin = "olleh" }, wait: true);

        Assert.True((string?)canary["status"] == "completed", canary.ToJsonString());
        Assert.Equal("hello\n", canary.Stdout());
        // The uids of this server's runs, as its sandbox logged them (the other runtime's server runs beside it).
        var uids = System.Text.RegularExpressions.Regex.Match(server.Server.Log, @"Runs get host uids (\d+)-(\d+)");
        Assert.True(uids.Success, "the server did not log its uids");
        Assert.Empty(ProcessesOf(long.Parse(uids.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(uids.Groups[2].Value, CultureInfo.InvariantCulture)));
        var prefix = server.Server.ContainerPrefix ?? throw new InvalidOperationException("no container prefix in the log");
        // Where this server put its run cgroups, as its sandbox logged it: beneath its own cgroup.
        var runsUnder = System.Text.RegularExpressions.Regex.Match(server.Server.Log, @"runs under ([^\s,]+)");
        Assert.True(runsUnder.Success, "the server did not log where its run cgroups are");
        var hierarchies = File.Exists("/sys/fs/cgroup/cgroup.controllers") ? ["/sys/fs/cgroup"] : Directory.EnumerateDirectories("/sys/fs/cgroup");
        var cgroups = hierarchies
            .Select(hierarchy => hierarchy + runsUnder.Groups[1].Value)
            .Where(Directory.Exists)
            .SelectMany(parent => Directory.EnumerateDirectories(parent, prefix + "*"))
            .ToList();
        Assert.Empty(cgroups);
        var mounts = await File.ReadAllTextAsync("/proc/self/mountinfo", TestContext.Current.CancellationToken);
        Assert.DoesNotContain(Path.Combine(server.DataDirectory, "sandbox", "live", "runs") + "/", mounts, StringComparison.Ordinal);
    }

    private static List<string> ProcessesOf(long firstUid, long lastUid)
    {
        var found = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories("/proc").Where(f => Path.GetFileName(f).All(char.IsAsciiDigit)))
        {
            try
            {
                var uidLine = File.ReadLines(Path.Combine(folder, "status")).First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
                var uid = long.Parse(uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                if (uid >= firstUid && uid <= lastUid)
                {
                    found.Add($"{Path.GetFileName(folder)} uid {uid}: {File.ReadAllText(Path.Combine(folder, "cmdline")).Replace('\0', ' ')}");
                }
            }
            catch (IOException)
            {
                // It ended while we looked.
            }
        }
        return found;
    }
}

public sealed class CrunHostileSuite(CrunHostileServer server) : HostileSuite(server), IClassFixture<CrunHostileServer>;

public sealed class RuncHostileSuite(RuncHostileServer server) : HostileSuite(server), IClassFixture<RuncHostileServer>;
