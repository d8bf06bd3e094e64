using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests.Faults;

public sealed class RestartAndRaceTests
{
    /// <summary>The API and the worker die hard (SIGKILL) mid-load and come back: clients lose no task.</summary>
    [Fact]
    public async Task ApiAndWorkerKilledAndRestartedMidLoad_NoTaskLost()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        var apiPort = RunboxProcess.FreePort();
        var workerData = TestEnvironment.NewDataDirectory();
        var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env, apiPort);
        var worker = await RunboxProcess.StartAsync("worker", workerData, env, extraArgs: ["--slots", "3"]);
        var ids = new List<string>();
        using (var client = new ApiClient(api.BaseAddress))
        {
            for (var i = 0; i < 20; i++)
            {
                ids.Add((string)(await client.SubmitAsync(new { language = "bash", source = $"sleep 0.4; echo {i}" }))["id"]!);
            }
            await client.WaitForStatusAsync(ids[0], "completed", TimeSpan.FromSeconds(60));
        }
        var prefix = worker.ContainerPrefix;
        api.Signal("KILL");
        worker.Signal("KILL");
        await api.DisposeAsync();
        await worker.DisposeAsync();

        await using var api2 = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env, apiPort);
        await using var worker2 = await RunboxProcess.StartAsync("worker", workerData, env, extraArgs: ["--slots", "3"]);
        using var again = new ApiClient(api2.BaseAddress);

        await FaultEnvironment.AssertInvariantsAsync(again, ids);
        for (var i = 0; i < ids.Count; i++)
        {
            Assert.Equal($"{i}\n", (string?)(await again.GetAsync(ids[i]))["result"]!["stdout"]);
        }
        await worker2.StopAsync();
        await FaultEnvironment.AssertNoLeftoversAsync(prefix, worker2.ContainerPrefix);
    }

    /// <summary>Cancels land at every moment of short tasks' lives; each task ends completed or cancelled by a legal path.</summary>
    [Fact]
    public async Task CancelRacingCompletion_StateMachineStaysValid()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "4"]);
        using var client = new ApiClient(server.BaseAddress);
        var random = new Random(7);
        var ids = new List<string>();
        var cancels = new List<Task>();
        for (var i = 0; i < 40; i++)
        {
            var id = (string)(await client.SubmitAsync(new { language = "bash", source = "sleep 0.$((RANDOM % 3)); echo done" }))["id"]!;
            ids.Add(id);
            var delay = random.Next(0, 600);
            cancels.Add(Task.Run(async () =>
            {
                await Task.Delay(delay, TestContext.Current.CancellationToken);
                var (status, _, _) = await client.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");
                Assert.True(status is System.Net.HttpStatusCode.OK or System.Net.HttpStatusCode.Conflict, $"cancel answered {status}");
            }, TestContext.Current.CancellationToken));
        }
        await Task.WhenAll(cancels);

        var outcomes = new Dictionary<string, int>();
        foreach (var id in ids)
        {
            var task = await client.WaitForAsync(id, t => (string?)t["status"] is "completed" or "cancelled", TimeSpan.FromSeconds(60));
            FaultEnvironment.AssertLegalPath(task);
            outcomes[(string)task["status"]!] = outcomes.GetValueOrDefault((string)task["status"]!) + 1;
            if ((string?)task["status"] == "completed")
            {
                Assert.Equal("done\n", (string?)task["result"]!["stdout"]);
            }
        }
        await client.WaitForEndpointAsync("/v1/queue", q => (long?)q["running"] == 0 && (long?)q["pending"] == 0, TimeSpan.FromSeconds(30));
        Assert.True(outcomes.GetValueOrDefault("cancelled") > 0, "no cancel won its race");
    }

    /// <summary>
    /// A user hammers retry while the reaper takes over a frozen worker's task: the retry is refused
    /// until the reaper has settled the attempt, then wins exactly once; the frozen worker's late
    /// writes change nothing.
    /// </summary>
    [Fact]
    public async Task RetryRacingTheReaper_OneRetryWinsAndThePathStaysLegal()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env);
        await using var frozen = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "1"]);
        using var client = new ApiClient(api.BaseAddress);
        var id = (string)(await client.SubmitAsync(new
        {
            language = "bash",
            source = "sleep 2; echo finished",
            retry = new { max_attempts = 1, on = new[] { "infrastructure" } },
        }))["id"]!;
        await client.WaitForStatusAsync(id, "running");

        frozen.Signal("STOP");
        await using var reaper = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "1"]);
        var answers = new List<System.Net.HttpStatusCode>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var (status, _, _) = await client.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/retry");
            answers.Add(status);
            if (status == System.Net.HttpStatusCode.OK)
            {
                break;
            }
            Assert.Equal(System.Net.HttpStatusCode.Conflict, status);
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        frozen.Signal("CONT");

        Assert.Equal(System.Net.HttpStatusCode.OK, answers[^1]);
        var done = await client.WaitForStatusAsync(id, "completed", TimeSpan.FromSeconds(60));
        Assert.Equal(2, (int?)done["attempt"]);
        Assert.Equal("finished\n", (string?)done["result"]!["stdout"]);
        var reasons = done["transitions"]!.AsArray().Select(t => (string?)t!["reason"]).ToList();
        Assert.Contains("lease expired", reasons);
        Assert.Single(reasons, r => r == "retried by user");
        FaultEnvironment.AssertLegalPath(done);
        await FaultEnvironment.AssertInvariantsAsync(client, [id]);
    }
}
