using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Queue.Tests;

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
    public async Task Reap_ExpiredLeaseWithAttemptsLeft_BumpsFenceAndRetriesWithBackoff()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        Expire(h);
        var now = h.Time.GetUtcNow();

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));
        Assert.Empty(await h.Queue.ReapAsync(10, Token));

        Assert.Equal((item.TaskId, "alice", lease.Fence + 1, 1), (reaped.TaskId, reaped.User, reaped.NewFence, reaped.Attempt));
        Assert.Equal((OutcomeKind.Retry, TaskStatus.Failed), (reaped.Outcome.Kind, reaped.Outcome.Status));
        // Backoff for attempt 1 is the base (10 s here) ± 20% jitter.
        var wait = reaped.Outcome.RetryAt!.Value - now;
        Assert.InRange(wait, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(12));
        Assert.Equal(RedisTaskQueue.LeaseExpiredError, reaped.Outcome.Error);
        Assert.Empty(await h.RunningCountsAsync());
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));

        h.Time.Advance(wait);
        var again = await h.ClaimOneAsync();
        Assert.Equal((2, lease.Fence + 2), (again.Attempt, again.Fence));
    }

    [Fact]
    public async Task Reap_ExpiredLeaseOnLastAttempt_DeadLetters()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.BackoffBase = TimeSpan.Zero);
        var item = await h.EnqueueAsync("alice", change: i => i with { MaxAttempts = 2 });
        await h.ClaimOneAsync();
        Expire(h);
        Assert.Equal(OutcomeKind.Retry, Assert.Single(await h.Queue.ReapAsync(10, Token)).Outcome.Kind);
        await h.ClaimOneAsync();
        Expire(h);

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.Equal((OutcomeKind.DeadLetter, TaskStatus.Failed, 2), (reaped.Outcome.Kind, reaped.Outcome.Status, reaped.Attempt));
        var state = await h.StateAsync(item.TaskId);
        Assert.Equal(("failed", true), (state!.State, state.Dead));
        Assert.Equal(1, (await h.Queue.GetStatsAsync(Token)).DeadLettered);
    }

    [Fact]
    public async Task Reap_TaskStalledMoreThanMaxStalls_DeadLettersAsPoison()
    {
        await using var h = new QueueHarness(redis.Redis, o =>
        {
            o.MaxStalls = 2;
            o.BackoffBase = TimeSpan.Zero;
        });
        var item = await h.EnqueueAsync("alice", change: i => i with { MaxAttempts = 20 });
        var kinds = new List<OutcomeKind>();
        for (var i = 0; i < 3; i++)
        {
            await h.ClaimOneAsync();
            Expire(h);
            kinds.Add(Assert.Single(await h.Queue.ReapAsync(10, Token)).Outcome.Kind);
        }

        Assert.Equal([OutcomeKind.Retry, OutcomeKind.Retry, OutcomeKind.DeadLetter], kinds);
        Assert.True((await h.StateAsync(item.TaskId))!.Dead);
    }

    [Fact]
    public async Task Reap_CancelFlaggedTask_Cancelled()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        await h.ClaimOneAsync();
        Assert.Equal(CancelResult.FlaggedRunning, await h.Queue.CancelAsync(item.TaskId, Token));
        Expire(h);

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Token));

        Assert.Equal((OutcomeKind.Cancelled, TaskStatus.Cancelled), (reaped.Outcome.Kind, reaped.Outcome.Status));
        Assert.Equal("cancelled", (await h.StateAsync(item.TaskId))!.State);
    }

    [Fact]
    public async Task Reap_PastRunDeadline_TimesOutAndRetriesOrFailsByPolicy()
    {
        await using var h = new QueueHarness(redis.Redis);
        var retried = await h.EnqueueAsync("alice", change: i => i with { RunDeadline = TimeSpan.FromSeconds(10) });
        var notRetried = await h.EnqueueAsync("bob", change: i => i with { RunDeadline = TimeSpan.FromSeconds(10), RetryOnTimeout = false });
        await h.Queue.ClaimAsync("w", 2, Token);
        h.Time.Advance(TimeSpan.FromSeconds(10) + h.Options.ReapGrace + TimeSpan.FromMilliseconds(1));

        var reaped = (await h.Queue.ReapAsync(10, Token)).ToDictionary(r => r.TaskId);

        Assert.Equal((OutcomeKind.Retry, TaskStatus.Timeout), (reaped[retried.TaskId].Outcome.Kind, reaped[retried.TaskId].Outcome.Status));
        Assert.Equal((OutcomeKind.Failed, TaskStatus.Timeout), (reaped[notRetried.TaskId].Outcome.Kind, reaped[notRetried.TaskId].Outcome.Status));
        Assert.Equal("timeout", (await h.StateAsync(notRetried.TaskId))!.State);
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
