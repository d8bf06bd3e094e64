using Npgsql;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>The multi-machine shape: `runbox api` and two `runbox worker`s sharing one Redis and one PostgreSQL.</summary>
public sealed class SplitRolesTests
{
    [Fact]
    public async Task ApiAndWorkers_SeparateProcesses_RunEveryTaskOnce()
    {
        var database = "e2e_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(TestEnvironment.Postgres))
        {
            await admin.OpenAsync(TestContext.Current.CancellationToken);
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
        var store = new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres) { Database = database }.ConnectionString;
        var env = TestEnvironment.SharedRedis("e2e-split-" + Guid.NewGuid().ToString("N")[..8], new Dictionary<string, string> { ["Runbox__Store"] = store });

        await using var worker1 = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "2"]);
        await using var worker2 = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "2"]);
        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env);
        using var client = new ApiClient(api.BaseAddress);

        var ids = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            ids.Add((string)(await client.SubmitAsync(new { language = "python", source = $"import time\ntime.sleep(0.2)\nprint({i} * {i})" }))["id"]!);
        }
        var workersSeen = new HashSet<string>();
        for (var i = 0; i < ids.Count; i++)
        {
            var task = await client.WaitForStatusAsync(ids[i], "completed", TimeSpan.FromSeconds(90));
            Assert.Equal($"{i * i}\n", (string?)task["result"]!["stdout"]);
            Assert.Equal(1, (int?)task["attempt"]);
            workersSeen.Add((string)task["transitions"]!.AsArray().Single(t => (string?)t!["to"] == "running")!["worker"]!);
        }

        Assert.Equal(2, workersSeen.Count);
        var workers = (await client.SendAsync(HttpMethod.Get, "/v1/workers")).Body!.AsArray();
        Assert.Equal(2, workers.Count);
        Assert.All(workers, w => Assert.Contains("python", w!["languages"]!.AsArray().Select(l => (string?)l)));
        var languages = (await client.SendAsync(HttpMethod.Get, "/v1/languages")).Body!.AsArray();
        Assert.Contains(languages, l => (string?)l!["id"] == "python");
    }
}
