using Runbox.Core.Seams;

namespace Runbox.Queue.Tests;

/// <summary>
/// The reconciler's repairs after Redis lost part of its data. Each case deletes what a partial loss can
/// take (keys go one at a time: a flush racing the service, a crash between AOF syncs) and checks that
/// the task is claimable, or reapable, again.
/// </summary>
public sealed class RepairTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Restore_PendingAndReachable_IntactAndQueuedOnce()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");

        Assert.Equal(QueueRestore.Intact, await h.Queue.RestoreAsync(item, running: false, Token));

        Assert.Equal(item.TaskId, (await h.ClaimOneAsync()).TaskId);
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
    }

    [Fact]
    public async Task Restore_NoRecord_QueuedAfresh()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = QueueHarness.Item("alice");

        Assert.Equal(QueueRestore.Restored, await h.Queue.RestoreAsync(item, running: false, Token));

        Assert.Equal(item.TaskId, (await h.ClaimOneAsync()).TaskId);
    }

    [Fact]
    public async Task Restore_RecordWithoutItsReadyQueue_ClaimableAgain()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        await h.Database.KeyDeleteAsync(h.Keys.Prefix + "rq:alice");
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));

        Assert.Equal(QueueRestore.Restored, await h.Queue.RestoreAsync(item, running: false, Token));

        Assert.Equal(item.TaskId, (await h.ClaimOneAsync()).TaskId);
        Assert.Equal(QueueRestore.Intact, await h.Queue.RestoreAsync(item, running: false, Token));
    }

    [Fact]
    public async Task Restore_UserNoLongerAmongTheEligible_ClaimableAgain()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        await h.Database.KeyDeleteAsync(h.Keys.Static[0]);
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));

        Assert.Equal(QueueRestore.Restored, await h.Queue.RestoreAsync(item, running: false, Token));

        Assert.Equal(item.TaskId, (await h.ClaimOneAsync()).TaskId);
    }

    [Fact]
    public async Task Restore_DelayedRecordWithoutTheDelayedSet_RunsAtTheStoresTime()
    {
        await using var h = new QueueHarness(redis.Redis);
        var runAt = h.Time.GetUtcNow().AddSeconds(30);
        var item = await h.EnqueueAsync("alice", change: i => i with { RunAt = runAt });
        await h.Database.KeyDeleteAsync(h.Keys.Prefix + "delayed");

        Assert.Equal(QueueRestore.Restored, await h.Queue.RestoreAsync(item, running: false, Token));

        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
        h.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(item.TaskId, (await h.ClaimOneAsync()).TaskId);
    }

    [Fact]
    public async Task Restore_RunningRecordWithoutItsLease_ReapableAgain()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        await h.Database.KeyDeleteAsync(h.Keys.Leases);
        h.Time.Advance(h.Options.LeaseDuration + h.Options.ReapGrace);
        Assert.Empty(await h.Queue.ReapAsync(10, Token));

        Assert.Equal(QueueRestore.Restored, await h.Queue.RestoreAsync(item, running: true, Token));

        Assert.Equal(lease.TaskId, Assert.Single(await h.Queue.ReapAsync(10, Token)).TaskId);
    }

    [Fact]
    public async Task Restore_RunningInTheStoreWithoutARecord_Lost()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = QueueHarness.Item("alice");

        Assert.Equal(QueueRestore.Lost, await h.Queue.RestoreAsync(item, running: true, Token));

        Assert.Null(await h.StateAsync(item.TaskId));
    }

    [Fact]
    public async Task Restore_PendingInTheStoreButClaimedHere_LeftRunning()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        Assert.Equal(QueueRestore.Intact, await h.Queue.RestoreAsync(item, running: false, Token));

        Assert.Equal(LeaseState.Ok, Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token)).State);
        Assert.Equal(1, (await h.RunningCountsAsync())["alice"]);
    }

    [Fact]
    public async Task Recount_CountsMatchTheRunningTasks_NothingCorrected()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 2);
        await h.EnqueueAsync("alice");
        await h.EnqueueAsync("bob");
        await h.Queue.ClaimAsync("w", 2, Token);

        Assert.Equal(0, await h.Queue.RecountRunningAsync(Token));

        Assert.Equal(new Dictionary<string, long> { ["alice"] = 1, ["bob"] = 1 }, await h.RunningCountsAsync());
    }

    /// <summary>
    /// A record lost while its task ran takes the count's decrement with it (neither a finish nor the
    /// reaper can end what the queue no longer has): a user at their limit would never be claimed from again.
    /// </summary>
    [Fact]
    public async Task Recount_RunningRecordLost_UserClaimableAgain()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 1);
        await h.EnqueueAsync("alice");
        var waiting = await h.EnqueueAsync("alice");
        var lost = await h.ClaimOneAsync();
        await h.Database.KeyDeleteAsync(h.Keys.Task(lost.TaskId));
        Assert.False(await h.Queue.FinishAsync(lost, new AttemptOutcome(OutcomeKind.Completed, Core.Tasks.TaskStatus.Completed), Token));
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));

        Assert.Equal(1, await h.Queue.RecountRunningAsync(Token));

        Assert.Equal(waiting.TaskId, (await h.ClaimOneAsync()).TaskId);
        Assert.Equal(1, (await h.RunningCountsAsync())["alice"]);
    }
}
