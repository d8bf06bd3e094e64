using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Queue.Tests;

public sealed class CancelAndDeadLetterTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly AttemptOutcome Dead = new(OutcomeKind.DeadLetter, TaskStatus.Failed);

    [Fact]
    public async Task Cancel_ReadyTask_RemovedAtOnce()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");

        Assert.Equal(CancelResult.RemovedPending, await h.Queue.CancelAsync(item.TaskId, Token));

        Assert.Equal("cancelled", (await h.StateAsync(item.TaskId))!.State);
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
        Assert.Empty((await h.Queue.GetStatsAsync(Token)).ReadyByPriority);
    }

    [Fact]
    public async Task Cancel_DelayedTask_RemovedAtOnce()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice", change: i => i with { RunAt = QueueHarness.Start.AddMinutes(1) });

        Assert.Equal(CancelResult.RemovedPending, await h.Queue.CancelAsync(item.TaskId, Token));

        h.Time.Advance(TimeSpan.FromMinutes(2));
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
        Assert.Equal(0, (await h.Queue.GetStatsAsync(Token)).Delayed);
    }

    [Fact]
    public async Task Cancel_RunningTask_FlagsPublishesAndHeartbeatReportsIt()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        var nudged = new TaskCompletionSource<Guid>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = new CancellationTokenSource();
        await h.Queue.SubscribeCancellationsAsync(id =>
        {
            nudged.TrySetResult(id);
            return Task.CompletedTask;
        }, subscription.Token);

        Assert.Equal(CancelResult.FlaggedRunning, await h.Queue.CancelAsync(item.TaskId, Token));

        Assert.Equal(item.TaskId, await nudged.Task.WaitAsync(TimeSpan.FromSeconds(5), Token));
        Assert.Equal(LeaseState.CancelRequested, Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token)).State);
        Assert.Equal("running", (await h.StateAsync(item.TaskId))!.State);
        Assert.True(await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Cancelled, TaskStatus.Cancelled), Token));
        Assert.Equal("cancelled", (await h.StateAsync(item.TaskId))!.State);
        await subscription.CancelAsync();
    }

    [Fact]
    public async Task Cancel_FinishedOrUnknownTask_ChangesNothing()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Completed, TaskStatus.Completed), Token);

        Assert.Equal(CancelResult.AlreadyFinished, await h.Queue.CancelAsync(item.TaskId, Token));
        Assert.Equal(CancelResult.NotFound, await h.Queue.CancelAsync(Guid.NewGuid(), Token));
        Assert.Equal("completed", (await h.StateAsync(item.TaskId))!.State);
    }

    [Fact]
    public async Task RequeueDeadLetter_DeadTask_QueuedAgainWithFreshBudget()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice", change: i => i with { MaxAttempts = 1 });
        var lease = await h.ClaimOneAsync();
        Assert.True(await h.Queue.FinishAsync(lease, Dead, Token));

        var requeued = await h.Queue.RequeueDeadLetterAsync(item with { Attempt = 1, MaxAttempts = 2, Fence = lease.Fence }, Token);

        Assert.True(requeued);
        var state = await h.StateAsync(item.TaskId);
        Assert.Equal(("pending", false, 1), (state!.State, state.Dead, state.Attempt));
        Assert.Equal(0, (await h.Queue.GetStatsAsync(Token)).DeadLettered);
        var again = await h.ClaimOneAsync();
        Assert.Equal((2, lease.Fence + 1), (again.Attempt, again.Fence));
    }

    [Fact]
    public async Task RequeueDeadLetter_TaskTrimmedFromQueue_QueuedFromCallersRecord()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = QueueHarness.Item("alice") with { Attempt = 3, MaxAttempts = 6, Fence = 7 };

        Assert.True(await h.Queue.RequeueDeadLetterAsync(item, Token));

        var lease = await h.ClaimOneAsync();
        Assert.Equal((item.TaskId, 4, 8L), (lease.TaskId, lease.Attempt, lease.Fence));
    }

    [Fact]
    public async Task RequeueDeadLetter_TaskNotDeadLettered_ReturnsFalseAndChangesNothing()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        Assert.False(await h.Queue.RequeueDeadLetterAsync(item, Token));

        Assert.Equal(LeaseState.Ok, Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token)).State);
    }

    [Fact]
    public async Task Finish_DeadLettersOverCap_TrimsOldestAndCountsIt()
    {
        await using var h = new QueueHarness(redis.Redis, o =>
        {
            o.DeadLetterCap = 2;
            o.DefaultUserConcurrency = 10;
        });
        var items = new List<QueueItem>();
        for (var i = 0; i < 3; i++)
        {
            items.Add(await h.EnqueueAsync("alice"));
        }
        foreach (var lease in await h.Queue.ClaimAsync("w", 3, Token))
        {
            h.Time.Advance(TimeSpan.FromSeconds(1));
            Assert.True(await h.Queue.FinishAsync(lease, Dead, Token));
        }

        var stats = await h.Queue.GetStatsAsync(Token);
        Assert.Equal((2, 1), (stats.DeadLettered, stats.DeadLetterTrimmed));
        Assert.Null(await h.StateAsync(items[0].TaskId));
        Assert.True((await h.StateAsync(items[2].TaskId))!.Dead);
        var trimmedRecord = await h.Database.StreamRangeAsync(h.Keys.Transitions, messageOrder: StackExchange.Redis.Order.Descending);
        Assert.Contains(trimmedRecord, e => e["reason"] == "dead_letter_trimmed" && e["task"] == items[0].TaskId.ToString("D"));
    }
}
