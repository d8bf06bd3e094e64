using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runbox.Core.Tasks;

namespace Runbox.Worker.Tests;

/// <summary>The cluster's maintenance runs on one process at a time, and another takes over when it dies.</summary>
public sealed class MaintenanceTests(RedisFixture redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Maintenance Process(LifecycleHarness h, string id) => new(
        h.Queue,
        new Reaper(h.Queue, h.Lifecycle),
        new Reconciler(h.Queue, h.Store, h.Lifecycle, Options(id), h.Time, NullLogger<Reconciler>.Instance),
        Options(id),
        h.Time,
        NullLogger<Maintenance>.Instance);

    private static IOptions<WorkerOptions> Options(string id) => Microsoft.Extensions.Options.Options.Create(new WorkerOptions { Id = id, MaintenanceTerm = TimeSpan.FromSeconds(10) });

    [Fact]
    public async Task Tick_TwoProcesses_OneLeadsAndReaps_TheOtherNever()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var leader = Process(h, "one");
        var follower = Process(h, "two");
        await h.SubmitAsync();
        var (_, task) = await h.StartAsync();

        // Both tick every 5 s until the worker's lease (30 s) and the reap grace (5 s) are past.
        var followerLed = false;
        for (var elapsed = 0; elapsed <= 40; elapsed += 5)
        {
            await leader.TickAsync(Ct);
            await follower.TickAsync(Ct);
            followerLed |= follower.Leads;
            if (elapsed < 35)
            {
                Assert.Equal(TaskStatus.Running, (await h.GetAsync(task.Id))!.Status);
            }
            h.Time.Advance(TimeSpan.FromSeconds(5));
        }

        Assert.True(leader.Leads);
        Assert.False(followerLed);
        Assert.Equal(TaskStatus.Pending, (await h.GetAsync(task.Id))!.Status);
    }

    /// <summary>The leader dies (stops ticking without giving up the lead): another process takes over within one term.</summary>
    [Fact]
    public async Task Tick_LeaderDied_AnotherTakesOverOnceItsTermRanOutAndReaps()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var dead = Process(h, "one");
        var survivor = Process(h, "two");
        await dead.TickAsync(Ct);
        await h.SubmitAsync();
        var (_, task) = await h.StartAsync();

        h.Time.Advance(TimeSpan.FromSeconds(9));
        await survivor.TickAsync(Ct);
        Assert.False(survivor.Leads);
        h.ExpireLeases();
        await survivor.TickAsync(Ct);

        Assert.True(survivor.Leads);
        Assert.Equal(TaskStatus.Pending, (await h.GetAsync(task.Id))!.Status);
    }

    [Fact]
    public async Task Stop_Leader_GivesTheLeadUpAtOnce()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var leaving = Process(h, "one");
        var next = Process(h, "two");
        await leaving.TickAsync(Ct);

        await leaving.StopAsync(Ct);
        await next.TickAsync(Ct);

        Assert.True(next.Leads);
    }
}
