using System.Text.RegularExpressions;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests.Faults;

/// <summary>
/// Workers on other network hosts (their own network namespaces on veth links) against a Redis on
/// this one: a worker that loses its link mid-run loses its lease, the task re-runs elsewhere, and
/// the partitioned worker's result is refused. The store is a SQLite file both hosts share.
/// </summary>
public sealed class NetworkFaultTests
{
    [Fact]
    public async Task WorkerLosesItsLinkMidRun_TaskRerunsAndStaleResultIsRefused()
    {
        await using var net = await NetworkHost.CreateAsync();
        var redisPort = RunboxProcess.FreePort();
        using var redis = await FaultEnvironment.StartRedisAsync(redisPort, null, net.HostAddress);
        var store = $"sqlite:{Path.Combine(TestEnvironment.NewDataDirectory(), "runbox.db")}";
        var onHost = await EnvironmentAsync(store, $"127.0.0.1:{redisPort}");
        var onGuest = new Dictionary<string, string>(onHost) { ["Runbox__Redis"] = $"{net.HostAddress}:{redisPort},abortConnect=false,connectTimeout=2000" };

        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), onHost);
        await using var remote = await RunboxProcess.StartInNetworkAsync("worker", TestEnvironment.NewDataDirectory(), onGuest, net.NamespacePath, "--slots", "1");
        using var client = new ApiClient(api.BaseAddress);
        // The API offers what registered workers offer: the worker's first registration may come after its start.
        await WaitUntilOfferedAsync(client, "bash");
        var id = (string)(await client.SubmitAsync(new { language = "bash", source = "sleep 6; echo \"done by $HOSTNAME\"", limits = new { wall_time_ms = 30000 } }))["id"]!;
        var running = await client.WaitForStatusAsync(id, "running");
        Assert.Equal(remote.WorkerId, (string?)running["transitions"]!.AsArray()[^1]!["worker"]);

        await net.CutAsync();
        await using (var local = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), onHost, extraArgs: ["--slots", "1"]))
        {
            var done = await client.WaitForAsync(id, t => (string?)t["status"] == "completed", TimeSpan.FromSeconds(90));
            Assert.Equal(2, (int?)done["attempt"]);
            Assert.Equal(local.WorkerId, (string?)done["transitions"]!.AsArray()[^1]!["worker"]);

            // The partitioned worker's run ends and its write comes too late; the link comes back.
            await remote.WaitForLogAsync(new Regex("refused|lease lost"), TimeSpan.FromSeconds(60));
            await net.RestoreAsync();
            var after = await client.GetAsync(id);
            Assert.Equal(done["result"]!.ToJsonString(), after["result"]!.ToJsonString());
            FaultEnvironment.AssertLegalPath(after);
        }

        // Back on the network, the remote worker takes work again, once it has registered again (its
        // registration may have run out during the cut, and the local worker is gone).
        await WaitUntilOfferedAsync(client, "bash");
        var next = (string)(await client.SubmitAsync(new { language = "bash", source = "echo back" }))["id"]!;
        var nextDone = await client.WaitForStatusAsync(next, "completed", TimeSpan.FromSeconds(60));
        Assert.Equal(remote.WorkerId, (string?)nextDone["transitions"]!.AsArray()[^1]!["worker"]);
        await client.WaitForEndpointAsync("/v1/queue", q => (long?)q["running"] == 0 && (long?)q["pending"] == 0, TimeSpan.FromSeconds(30));
    }

    /// <summary>Multi-host mode: the API here, two workers on two other network hosts, under the load generator.</summary>
    [Fact]
    public async Task ApiAndTwoRemoteWorkers_LoadGenerator_EveryTaskAsExpected()
    {
        await using var netA = await NetworkHost.CreateAsync();
        await using var netB = await NetworkHost.CreateAsync();
        var redisPort = RunboxProcess.FreePort();
        using var redis = await FaultEnvironment.StartRedisAsync(redisPort, null, netA.HostAddress, netB.HostAddress);
        var store = $"sqlite:{Path.Combine(TestEnvironment.NewDataDirectory(), "runbox.db")}";
        var onHost = await EnvironmentAsync(store, $"127.0.0.1:{redisPort}");

        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), onHost);
        await using var workerA = await RunboxProcess.StartInNetworkAsync("worker", TestEnvironment.NewDataDirectory(),
            new Dictionary<string, string>(onHost) { ["Runbox__Redis"] = $"{netA.HostAddress}:{redisPort}" }, netA.NamespacePath, "--slots", "3");
        await using var workerB = await RunboxProcess.StartInNetworkAsync("worker", TestEnvironment.NewDataDirectory(),
            new Dictionary<string, string>(onHost) { ["Runbox__Redis"] = $"{netB.HostAddress}:{redisPort}" }, netB.NamespacePath, "--slots", "3");

        var report = Path.Combine(TestEnvironment.NewDataDirectory(), "bench.json");
        var (code, output) = await FaultEnvironment.RunWithCodeAsync("dotnet",
            Path.Combine(AppContext.BaseDirectory, "runbox.dll"), "bench", "--server", api.BaseAddress.ToString(), "--tasks", "60", "--concurrency", "12", "--mix", "mixed", "--report", report);

        Assert.True(code == 0, output);
        var json = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(report, TestContext.Current.CancellationToken))!;
        Assert.Equal(60, (int?)json["as_expected"]);
        Assert.Equal(0, (int?)json["lost"]);
        using var client = new ApiClient(api.BaseAddress);
        var tasks = (await client.SendAsync(HttpMethod.Get, "/v1/tasks?limit=200")).Body!["items"]!.AsArray();
        var ranOn = tasks.SelectMany(t => t!["transitions"]!.AsArray()).Where(t => (string?)t!["to"] == "running").Select(t => (string?)t!["worker"]).ToHashSet();
        Assert.Equal(new HashSet<string?> { workerA.WorkerId, workerB.WorkerId }, ranOn);
        Assert.All(tasks, t => FaultEnvironment.AssertLegalPath(t!));
    }

    private static async Task<Dictionary<string, string>> EnvironmentAsync(string store, string redis)
    {
        var env = await FaultEnvironment.NewClusterAsync(redis);
        env["Runbox__Store"] = store;
        // One SQLite file that every process on this machine opens: allowed for roles only when asked for.
        env["Runbox__AllowLocalStores"] = "true";
        return env;
    }

    private static Task WaitUntilOfferedAsync(ApiClient client, string language) =>
        client.WaitForEndpointAsync("/v1/languages", languages => languages.AsArray().Any(l => (string?)l!["id"] == language), TimeSpan.FromSeconds(60));
}
