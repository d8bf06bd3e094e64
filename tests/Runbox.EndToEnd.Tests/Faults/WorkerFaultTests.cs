using System.Text.RegularExpressions;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests.Faults;

/// <summary>Workers that die or freeze mid-run: no task is lost, and a zombie's late writes are refused.</summary>
public sealed class WorkerFaultTests
{
    private static readonly Regex TookTheLead = new("took the lead of the maintenance");

    [Fact]
    public async Task WorkerKilledMidRun_TaskRetriedElsewhereAfterLeaseExpires()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        var dataA = TestEnvironment.NewDataDirectory();
        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env);
        var workerA = await RunboxProcess.StartAsync("worker", dataA, env, extraArgs: ["--slots", "2"]);
        using var client = new ApiClient(api.BaseAddress);
        var id = (string)(await client.SubmitAsync(new { language = "bash", source = "sleep 2; echo survived" }))["id"]!;
        await client.WaitForStatusAsync(id, "running");
        var prefixA = workerA.ContainerPrefix;
        // The only worker leads the maintenance, so the one that reaps its task must take the lead over.
        await workerA.WaitForLogAsync(TookTheLead, TimeSpan.FromSeconds(30));

        workerA.Signal("KILL");
        await workerA.DisposeAsync();
        await using var workerB = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "2"]);

        var task = await client.WaitForStatusAsync(id, "completed", TimeSpan.FromSeconds(60));
        await workerB.WaitForLogAsync(TookTheLead, TimeSpan.FromSeconds(30));
        Assert.Equal("survived\n", (string?)task["result"]!["stdout"]);
        Assert.Equal(2, (int?)task["attempt"]);
        var transitions = task["transitions"]!.AsArray();
        Assert.Contains(transitions, t => (string?)t!["reason"] == "lease expired");
        Assert.Equal(workerB.WorkerId, (string?)transitions[^1]!["worker"]);
        await FaultEnvironment.AssertInvariantsAsync(client, [id]);

        // The killed worker's container is its own to clean: a restart on the same data folder does it.
        await using (await RunboxProcess.StartAsync("worker", dataA, env))
        {
        }
        await FaultEnvironment.AssertNoLeftoversAsync(prefixA);
    }

    [Fact]
    public async Task WorkerFrozenPastItsLease_ZombieWritesRefusedAndResultStays()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env);
        await using var zombie = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "1"]);
        using var client = new ApiClient(api.BaseAddress);
        var id = (string)(await client.SubmitAsync(new { language = "bash", source = "sleep 1.5; echo \"run $RANDOM\"" }))["id"]!;
        await client.WaitForStatusAsync(id, "running");

        zombie.Signal("STOP");
        string? settledStdout;
        await using (var healthy = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "1"]))
        {
            var settled = await client.WaitForStatusAsync(id, "completed", TimeSpan.FromSeconds(60));
            Assert.Equal(2, (int?)settled["attempt"]);
            Assert.Equal(healthy.WorkerId, (string?)settled["transitions"]!.AsArray()[^1]!["worker"]);
            settledStdout = (string?)settled["result"]!["stdout"];

            // The zombie wakes up with a finished run and a dead lease; whatever it tries is refused.
            zombie.Signal("CONT");
            await zombie.WaitForLogAsync(new Regex("lease lost|refused"), TimeSpan.FromSeconds(30));
        }

        var after = await client.GetAsync(id);
        Assert.Equal("completed", (string?)after["status"]);
        Assert.Equal(settledStdout, (string?)after["result"]!["stdout"]);
        Assert.Equal(2, (int?)after["attempt"]);
        await FaultEnvironment.AssertInvariantsAsync(client, [id]);
    }
}
