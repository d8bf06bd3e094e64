using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Queue.Tests;

/// <summary>
/// The queue's half of ending a lost attempt: the take-over (bump the fence, count the stall, lease the
/// attempt to the reaper). What follows is decided by the lifecycle engine (tests/Runbox.Worker.Tests).
/// </summary>
public sealed class ReaperTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static void Expire(QueueHarness h) =>
        h.Time.Advance(h.Options.LeaseDuration + h.Options.ReapGrace + TimeSpan.FromMilliseconds(1));

    [Fact]
    public async Task Reap_LeaseExpiredWithinGrace_LeftAlone()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        h.Time.Advance(h.Options.LeaseDuration + h.Options.ReapGrace - TimeSpan.FromMilliseconds(1));

        Assert.Empty(await h.Queue.ReapAsync(10, Token));
        Assert.Equal(lease.Fence, (await h.StateAsync(lease.TaskId))!.Fence);
    }

    [Fact]
    public async Task Reap_ExpiredLease_BumpsTheFenceCountsTheStallAndHoldsTheAttempt()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        Expire(h);

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.Equal((item.TaskId, "alice", lease.Fence + 1, 1, 1, false, false),
            (reaped.TaskId, reaped.User, reaped.NewFence, reaped.Attempt, reaped.Stalls, reaped.CancelRequested, reaped.PastDeadline));
        // Still running, held by the reaper: the user's count stays until the attempt is ended, and the lost
        // worker's writes are stale.
        Assert.Equal(("running", lease.Fence + 1), ((await h.StateAsync(item.TaskId))!.State, (await h.StateAsync(item.TaskId))!.Fence));
        Assert.Equal(1, (await h.RunningCountsAsync())["alice"]);
        Assert.Equal(LeaseState.Lost, Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token)).State);
        Assert.Empty(await h.Queue.ReapAsync(10, Token));
    }

    [Fact]
    public async Task Reap_ThenFinishUnderTheNewFence_EndsTheAttemptAsDecided()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        Expire(h);
        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.False(await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Completed, TaskStatus.Completed), Token));
        Assert.True(await h.Queue.FinishAsync(reaped.Lease, new AttemptOutcome(OutcomeKind.DeadLetter, TaskStatus.Failed), Token));

        var state = await h.StateAsync(item.TaskId);
        Assert.Equal(("failed", true), (state!.State, state.Dead));
        Assert.Empty(await h.RunningCountsAsync());
    }

    /// <summary>A reaper that died after the take-over: the attempt is taken over again, and that is not another stall of the task.</summary>
    [Fact]
    public async Task Reap_TakeOverNotFinished_TakenOverAgainWithoutCountingAStall()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice");
        await h.ClaimOneAsync();
        Expire(h);
        var first = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Expire(h);
        var again = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.Equal((first.NewFence + 1, 1), (again.NewFence, again.Stalls));
    }

    [Fact]
    public async Task Reap_EveryLostLease_CountsAStall()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice", change: i => i with { MaxAttempts = 20 });
        var stalls = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            await h.ClaimOneAsync();
            Expire(h);
            var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));
            stalls.Add(reaped.Stalls);
            await h.RetryNowAsync(reaped);
        }

        Assert.Equal([1, 2, 3], stalls);
    }

    [Fact]
    public async Task Reap_CancelFlaggedTask_SaysSo()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        await h.ClaimOneAsync();
        Assert.Equal(CancelResult.FlaggedRunning, await h.Queue.CancelAsync(item.TaskId, Token));
        Expire(h);

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.True(reaped.CancelRequested);
    }

    [Fact]
    public async Task Reap_PastRunDeadline_SaysSo()
    {
        await using var h = new QueueHarness(redis.Redis);
        var late = await h.EnqueueAsync("alice", change: i => i with { RunDeadline = TimeSpan.FromSeconds(10) });
        await h.ClaimOneAsync();
        h.Time.Advance(TimeSpan.FromSeconds(10) + h.Options.ReapGrace + TimeSpan.FromMilliseconds(1));

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.Equal((late.TaskId, true), (reaped.TaskId, reaped.PastDeadline));
    }

    [Fact]
    public async Task Reap_MoreExpiredThanMax_HandlesAtMostMaxPerCall()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 10);
        for (var i = 0; i < 5; i++)
        {
            await h.EnqueueAsync("alice");
        }
        await h.Queue.ClaimAsync("w", 5, Token);
        Expire(h);

        Assert.Equal(3, (await h.Queue.ReapAsync(3, Token)).Count);
        Assert.Equal(2, (await h.Queue.ReapAsync(3, Token)).Count);
        Assert.Empty(await h.Queue.ReapAsync(3, Token));
    }
}
