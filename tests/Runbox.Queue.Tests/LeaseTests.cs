using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Queue.Tests;

public sealed class LeaseTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly AttemptOutcome Completed = new(OutcomeKind.Completed, TaskStatus.Completed);

    [Fact]
    public async Task Heartbeat_MatchingFence_ExtendsLeaseAndReportsOk()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        h.Time.Advance(TimeSpan.FromSeconds(20));
        var status = Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token));

        Assert.Equal(LeaseState.Ok, status.State);
        var until = await h.Database.SortedSetScoreAsync(h.Keys.Leases, lease.TaskId.ToString("D"));
        Assert.Equal((QueueHarness.Start + TimeSpan.FromSeconds(50)).ToUnixTimeMilliseconds(), until);
    }

    [Fact]
    public async Task Heartbeat_PastRunDeadline_ReportsPastDeadlineAndDoesNotExtend()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice", change: i => i with { RunDeadline = TimeSpan.FromSeconds(10) });
        var lease = await h.ClaimOneAsync();
        Assert.Equal(QueueHarness.Start.AddSeconds(10), lease.LeaseUntil);

        h.Time.Advance(TimeSpan.FromSeconds(11));
        var status = Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token));

        Assert.Equal(LeaseState.PastDeadline, status.State);
        var until = await h.Database.SortedSetScoreAsync(h.Keys.Leases, lease.TaskId.ToString("D"));
        Assert.Equal(QueueHarness.Start.AddSeconds(10).ToUnixTimeMilliseconds(), until);
    }

    [Fact]
    public async Task Finish_FrozenWorkerAfterReapAndReclaim_ReturnsFalseAndChangesNothing()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var frozen = await h.ClaimOneAsync("frozen");

        // The frozen worker misses its lease; the reaper takes the attempt over under a new fence and retries the task.
        h.Time.Advance(h.Options.LeaseDuration + h.Options.ReapGrace + TimeSpan.FromSeconds(1));
        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));
        Assert.Equal(frozen.Fence + 1, reaped.NewFence);
        await h.RetryNowAsync(reaped);

        var live = await h.ClaimOneAsync("live");
        Assert.Equal(item.TaskId, live.TaskId);
        Assert.Equal(frozen.Fence + 2, live.Fence);

        // The frozen worker wakes up: every write it makes is refused and changes nothing.
        Assert.Equal(LeaseState.Lost, Assert.Single(await h.Queue.HeartbeatAsync("frozen", [frozen], Token)).State);
        Assert.False(await h.Queue.FinishAsync(frozen, Completed, Token));
        Assert.False(await h.Queue.FinishAsync(frozen, new AttemptOutcome(OutcomeKind.DeadLetter, TaskStatus.Failed), Token));
        var state = await h.StateAsync(item.TaskId);
        Assert.Equal(("running", live.Fence, 2), (state!.State, state.Fence, state.Attempt));
        Assert.Equal(1, (await h.RunningCountsAsync())["alice"]);

        // The live worker is unaffected.
        Assert.Equal(LeaseState.Ok, Assert.Single(await h.Queue.HeartbeatAsync("live", [live], Token)).State);
        Assert.True(await h.Queue.FinishAsync(live, Completed, Token));
        Assert.Equal("completed", (await h.StateAsync(item.TaskId))!.State);
        Assert.Empty(await h.RunningCountsAsync());

        // Even after the live finish, the frozen finish stays refused.
        Assert.False(await h.Queue.FinishAsync(frozen, Completed, Token));
    }

    [Fact]
    public async Task Transitions_EnqueueClaimFinish_EachRecordedWithFenceAndWorker()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync("worker-7");
        await h.Queue.FinishAsync(lease, Completed, Token);

        var entries = await h.Database.StreamRangeAsync(h.Keys.Transitions);

        Assert.Equal(
            [("", "pending", "0", ""), ("pending", "running", "1", "worker-7"), ("running", "completed", "1", "worker-7")],
            entries.Select(e => ((string)e["from"]!, (string)e["to"]!, (string)e["fence"]!, (string)e["worker"]!)));
        Assert.All(entries, e => Assert.Equal(item.TaskId.ToString("D"), (string)e["task"]!));
        Assert.All(entries, e => Assert.Equal(QueueHarness.Start.ToUnixTimeMilliseconds(), (long)e["at"]));
    }

    [Fact]
    public async Task Finish_RepeatedSameOutcome_AppliedOnceAndAnswersTrue()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 5);
        await h.EnqueueAsync("alice");
        await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        await h.ClaimOneAsync();

        Assert.True(await h.Queue.FinishAsync(lease, Completed, Token));
        Assert.True(await h.Queue.FinishAsync(lease, Completed, Token));

        Assert.Equal(1, (await h.RunningCountsAsync())["alice"]);
        Assert.False(await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Cancelled, TaskStatus.Cancelled), Token));
    }

    [Fact]
    public async Task Finish_RetryAt_PendingInDelayedUntilDueThenClaimable()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        var retry = new AttemptOutcome(OutcomeKind.Retry, TaskStatus.Timeout) { RetryAt = QueueHarness.Start.AddSeconds(30) };
        Assert.True(await h.Queue.FinishAsync(lease, retry, Token));

        Assert.Equal("pending", (await h.StateAsync(item.TaskId))!.State);
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
        h.Time.Advance(TimeSpan.FromSeconds(30));
        var again = await h.ClaimOneAsync();
        Assert.Equal((item.TaskId, 2, lease.Fence + 1), (again.TaskId, again.Attempt, again.Fence));
    }

    [Fact]
    public async Task Finish_FailedByPolicy_FinishedAndNotDeadLettered()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        Assert.True(await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Failed, TaskStatus.Failed), Token));

        var state = await h.StateAsync(item.TaskId);
        Assert.Equal(("failed", false), (state!.State, state.Dead));
        Assert.Equal(0, (await h.Queue.GetStatsAsync(Token)).DeadLettered);
    }

    [Fact]
    public async Task Finish_OutcomeKindAndStatusDisagree_Throws()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Completed, TaskStatus.Failed), Token));
        Assert.Equal("running", (await h.StateAsync(lease.TaskId))!.State);
    }

    [Fact]
    public async Task Remove_RunningTask_ForgetsItAndFreesUserSlot()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 1);
        var first = await h.EnqueueAsync("alice");
        var second = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        await h.Queue.RemoveAsync(first.TaskId, Token);
        await h.Queue.RemoveAsync(first.TaskId, Token);

        Assert.Null(await h.StateAsync(first.TaskId));
        Assert.False(await h.Queue.FinishAsync(lease, Completed, Token));
        Assert.Equal(second.TaskId, (await h.ClaimOneAsync()).TaskId);
        Assert.Equal(1, (await h.RunningCountsAsync())["alice"]);
    }
}
