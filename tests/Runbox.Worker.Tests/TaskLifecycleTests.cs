using Runbox.Core.Execution;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Lifecycle;

namespace Runbox.Worker.Tests;

/// <summary>
/// Every intent of the lifecycle engine, from the states it applies to, fenced and stale: what the store
/// records, what the queue holds, what is announced and what is counted, on a real Redis and a real store.
/// </summary>
public sealed class TaskLifecycleTests(RedisFixture redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ExecutionResult Verdicted(Verdict verdict) => new() { Verdict = verdict, ExitCode = verdict == Verdict.Ok ? 0 : 1 };

    [Fact]
    public async Task Submit_NewTask_PendingInTheStoreQueuedAnnouncedAndCounted()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);

        var task = await h.SubmitAsync();

        Assert.Equal(TaskStatus.Pending, (await h.GetAsync(task.Id))!.Status);
        Assert.Equal("pending", (await h.QueuedAsync(task.Id))!.State);
        Assert.Equal(["pending"], await h.AnnouncedAsync(task.Id));
        Assert.Equal(1, h.Counted()["pending"]);
    }

    [Fact]
    public async Task Submit_SameIdempotencyKeyTwice_OneTaskOneCount()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);

        var first = await h.Lifecycle.SubmitAsync(new NewTask(LifecycleHarness.Spec(), "key-1"), Ct);
        var again = await h.Lifecycle.SubmitAsync(new NewTask(LifecycleHarness.Spec(), "key-1"), Ct);

        Assert.Equal((true, false, first.Task.Id), (first.Created, again.Created, again.Task.Id));
        Assert.Equal(1, h.Counted()["pending"]);
    }

    [Fact]
    public async Task Start_ClaimedTask_RunningWithTheLeasesFence()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var submitted = await h.SubmitAsync();

        var (lease, task) = await h.StartAsync();

        Assert.Equal((submitted.Id, TaskStatus.Running, lease.Fence, 1), (task.Id, task.Status, task.Fence, task.Attempt));
        Assert.Equal(["pending", "running"], await h.AnnouncedAsync(task.Id));
        Assert.Equal(1, h.Counted()["running"]);
    }

    /// <summary>A user cancelled the task between the claim and the start: the store refuses the start and the queue lets go.</summary>
    [Fact]
    public async Task Start_TaskCancelledInTheStoreMeanwhile_NotStartedAndTheQueueSettlesItCancelled()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var submitted = await h.SubmitAsync();
        var lease = await h.ClaimAsync();
        await h.Store.TransitionAsync([new TransitionRequest(submitted.Id, TaskStatus.Pending, TaskStatus.Cancelled, "cancelled by user")], Ct);

        var started = await h.Lifecycle.StartAsync(lease, "w1", Ct);

        Assert.Null(started);
        Assert.Equal("cancelled", (await h.QueuedAsync(submitted.Id))!.State);
        Assert.Empty(await h.Queue.ClaimAsync("w2", 1, Ct));
    }

    [Fact]
    public async Task Finish_Ok_CompletedWithTheResultAndTheQueueEntryFinished()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lease, task) = await h.StartAsync();

        var decision = await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.Ok) with { Stdout = "1\n" }, Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal(TaskStatus.Completed, decision!.Status);
        Assert.Equal((TaskStatus.Completed, "1\n"), (stored.Status, stored.Result!.Stdout));
        Assert.Equal("completed", (await h.QueuedAsync(task.Id))!.State);
        Assert.Equal(["pending", "running", "completed"], await h.AnnouncedAsync(task.Id));
    }

    /// <summary>Regression: a retry was counted as its failure only, so pending undercounted retries.</summary>
    [Fact]
    public async Task Finish_TimeLimitWithAttemptsLeft_RetriedAfterTheTasksBackoff_BothStatusesAnnouncedAndCounted()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lease, task) = await h.StartAsync();

        var decision = await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.TimeLimit), Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal((TaskStatus.Pending, LifecycleHarness.Start + TimeSpan.FromSeconds(10)), (stored.Status, stored.NextAttemptAt));
        Assert.Equal(decision!.RetryAt, stored.NextAttemptAt);
        Assert.Equal(["pending", "running", "timeout", "pending"], await h.AnnouncedAsync(task.Id));
        Assert.Equal((2, 1), (h.Counted()["pending"], h.Counted()["timeout"]));
        Assert.Empty(await h.Queue.ClaimAsync("w1", 1, Ct));
        h.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(2, (await h.ClaimAsync()).Attempt);
    }

    [Fact]
    public async Task Finish_TimeLimitOnTheLastAttempt_DeadLetteredInTheStoreAndTheQueue()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync(LifecycleHarness.Spec(maxAttempts: 1));
        var (lease, task) = await h.StartAsync();

        await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.TimeLimit), Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal((TaskStatus.Timeout, true), (stored.Status, stored.DeadLettered));
        Assert.True((await h.QueuedAsync(task.Id))!.Dead);
    }

    [Fact]
    public async Task Finish_StaleFence_RefusedAndNothingChanges()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lease, task) = await h.StartAsync();
        var stale = lease with { Fence = lease.Fence - 1 };

        var decision = await h.Lifecycle.FinishAsync(task, stale, "w1", AttemptEnd.Ran, Verdicted(Verdict.Ok), Ct);

        Assert.Null(decision);
        Assert.Equal(TaskStatus.Running, (await h.GetAsync(task.Id))!.Status);
        Assert.Equal("running", (await h.QueuedAsync(task.Id))!.State);
        Assert.DoesNotContain("completed", h.Counted().Keys);
    }

    [Fact]
    public async Task Finish_Shutdown_HandedBackAndClaimableAtOnceWithoutAPenalty()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lease, task) = await h.StartAsync();

        await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Shutdown, Verdicted(Verdict.Cancelled), Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal((TaskStatus.Pending, LifecycleHarness.Start), (stored.Status, stored.NextAttemptAt));
        Assert.Equal(Verdict.InternalError, stored.Result!.Verdict);
        Assert.Equal(task.Id, (await h.ClaimAsync("w2")).TaskId);
    }

    [Fact]
    public async Task EndLostLease_WorkerVanished_RetriedByTheTasksPolicyAndTheLostWorkerIsRefused()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lost, task) = await h.StartAsync();
        h.ExpireLeases();
        var now = h.Time.GetUtcNow();

        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Ct));
        var status = await h.Lifecycle.EndLostLeaseAsync(reaped, Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal(TaskStatus.Failed, status);
        Assert.Equal((TaskStatus.Pending, now + TimeSpan.FromSeconds(10), reaped.NewFence), (stored.Status, stored.NextAttemptAt, stored.Fence));
        Assert.Equal(AttemptDecision.LeaseLostError, stored.Result!.Error);
        Assert.Equal(["pending", "running", "failed", "pending"], await h.AnnouncedAsync(task.Id));
        Assert.Null(await h.Lifecycle.FinishAsync(task, lost, "w1", AttemptEnd.Ran, Verdicted(Verdict.Ok), Ct));
        h.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal((2, reaped.NewFence + 1), ((await h.ClaimAsync("w2")).Attempt, (await h.GetAsync(task.Id))!.Fence + 1));
    }

    /// <summary>
    /// The decision the issue asked to be made once: the same task, timed out, waits as long whether its worker
    /// saw the timeout or the reaper found its lease past the deadline. (The reaper used its own backoff settings.)
    /// </summary>
    [Fact]
    public async Task EndLostLease_PastDeadline_SameBackoffAsATimeoutTheWorkerReported()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var spec = LifecycleHarness.Spec() with { Retry = LifecycleHarness.Spec().Retry with { Base = TimeSpan.FromSeconds(7), Factor = 5 } };
        spec = spec with { Limits = spec.Limits with { WallTime = TimeSpan.FromSeconds(1) } };

        await h.SubmitAsync(spec);
        var (lease, seenTask) = await h.StartAsync();
        await h.Lifecycle.FinishAsync(seenTask, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.TimeLimit), Ct);
        var seen = (await h.GetAsync(seenTask.Id))!.NextAttemptAt - h.Time.GetUtcNow();

        var lostTask = await h.SubmitAsync(spec);
        await h.StartAsync();
        // Past the run deadline (wall + compile allowance + slack) and the reap grace.
        h.Time.Advance(spec.Limits.WallTime + h.LifecycleOptions.CompileAllowance + h.LifecycleOptions.DeadlineSlack + h.QueueOptions.ReapGrace + TimeSpan.FromSeconds(1));
        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Ct), r => r.TaskId == lostTask.Id);
        Assert.True(reaped.PastDeadline);
        await h.Lifecycle.EndLostLeaseAsync(reaped, Ct);
        var stored = (await h.GetAsync(lostTask.Id))!;

        Assert.Equal(TaskStatus.Timeout, stored.Transitions[^2].To);
        Assert.Equal(TimeSpan.FromSeconds(7), seen);
        Assert.Equal(seen, stored.NextAttemptAt - h.Time.GetUtcNow());
    }

    [Fact]
    public async Task EndLostLease_MoreStallsThanAllowed_DeadLetteredAsAPoisonPill()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis, new LifecycleOptions { MaxStalls = 1 });
        var task = await h.SubmitAsync(LifecycleHarness.Spec(maxAttempts: 20));
        for (var i = 0; i < 2; i++)
        {
            await h.StartAsync();
            h.ExpireLeases();
            await h.Lifecycle.EndLostLeaseAsync(Assert.Single(await h.Queue.ReapAsync(10, Ct)), Ct);
            h.Time.Advance(TimeSpan.FromMinutes(1));
        }

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal((TaskStatus.Failed, true, 2), (stored.Status, stored.DeadLettered, stored.Attempt));
        Assert.Contains("poison", stored.Result!.Error, StringComparison.Ordinal);
        Assert.True((await h.QueuedAsync(task.Id))!.Dead);
    }

    /// <summary>The worker committed its result and died before telling the queue: the store's result stands.</summary>
    [Fact]
    public async Task EndLostLease_StoreAlreadySettledIt_QueueLetsGoAndTheResultStands()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lease, task) = await h.StartAsync();
        await h.Store.TransitionAsync(AttemptDecision.ForResult(Verdicted(Verdict.Ok), task, 1, h.Time.GetUtcNow(), 0).ToTransitions(task.Id, lease.Fence, "w1", "ok", Verdicted(Verdict.Ok)), Ct);
        h.ExpireLeases();

        var status = await h.Lifecycle.EndLostLeaseAsync(Assert.Single(await h.Queue.ReapAsync(10, Ct)), Ct);

        Assert.Null(status);
        Assert.Equal(TaskStatus.Completed, (await h.GetAsync(task.Id))!.Status);
        Assert.Null(await h.QueuedAsync(task.Id));
    }

    [Fact]
    public async Task EndLostLease_CancelRequested_Cancelled()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (_, task) = await h.StartAsync();
        Assert.Equal(CancelOutcome.Requested, (await h.Lifecycle.CancelAsync(task, Ct)).Outcome);
        h.ExpireLeases();

        await h.Lifecycle.EndLostLeaseAsync(Assert.Single(await h.Queue.ReapAsync(10, Ct)), Ct);

        Assert.Equal(TaskStatus.Cancelled, (await h.GetAsync(task.Id))!.Status);
        Assert.Equal("cancelled", (await h.QueuedAsync(task.Id))!.State);
    }

    [Fact]
    public async Task Cancel_Pending_CancelledEverywhereAndAWorkerThatClaimedItMeanwhileIsRefused()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var task = await h.SubmitAsync();

        var (outcome, cancelled) = await h.Lifecycle.CancelAsync(task, Ct);

        Assert.Equal((CancelOutcome.Cancelled, TaskStatus.Cancelled), (outcome, cancelled!.Status));
        Assert.Empty(await h.Queue.ClaimAsync("w1", 1, Ct));
        Assert.Equal(["pending", "cancelled"], await h.AnnouncedAsync(task.Id));
        Assert.Equal(1, h.Counted()["cancelled"]);
    }

    [Fact]
    public async Task Cancel_Settled_TooLateAndNothingChanges()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync();
        var (lease, task) = await h.StartAsync();
        await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.Ok), Ct);

        var (outcome, now) = await h.Lifecycle.CancelAsync((await h.GetAsync(task.Id))!, Ct);

        Assert.Equal((CancelOutcome.TooLate, TaskStatus.Completed), (outcome, now!.Status));
    }

    [Fact]
    public async Task Requeue_RetryOfAFailedTaskWithItsBudgetSpent_OneMoreAttemptAndClaimableAtOnce()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync(LifecycleHarness.Spec(maxAttempts: 1));
        var (lease, task) = await h.StartAsync();
        await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.RuntimeError), Ct);

        var (requeued, now) = await h.Lifecycle.RequeueAsync((await h.GetAsync(task.Id))!, RequeueKind.Retry, Ct);

        Assert.True(requeued);
        Assert.Equal((TaskStatus.Pending, 2), (now.Status, now.MaxAttempts));
        Assert.Equal(2, (await h.ClaimAsync()).Attempt);
    }

    [Fact]
    public async Task Requeue_DeadLetter_FreshBudgetOutOfTheDeadLetters()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync(LifecycleHarness.Spec(maxAttempts: 1));
        var (lease, task) = await h.StartAsync();
        await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.TimeLimit), Ct);

        var (requeued, now) = await h.Lifecycle.RequeueAsync((await h.GetAsync(task.Id))!, RequeueKind.DeadLetter, Ct);

        Assert.True(requeued);
        Assert.Equal((TaskStatus.Pending, false, 2), (now.Status, now.DeadLettered, now.MaxAttempts));
        Assert.False((await h.QueuedAsync(task.Id))!.Dead);
        Assert.Equal(0, (await h.Queue.GetStatsAsync(Ct)).DeadLettered);
    }

    [Fact]
    public async Task Requeue_TaskChangedMeanwhile_NotRequeuedAndTheCurrentTaskReturned()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var task = await h.SubmitAsync();

        var (requeued, now) = await h.Lifecycle.RequeueAsync(task with { Status = TaskStatus.Failed }, RequeueKind.Retry, Ct);

        Assert.False(requeued);
        Assert.Equal(TaskStatus.Pending, now.Status);
    }

    [Fact]
    public async Task Reconcile_PendingTaskTheQueueLost_QueuedAgain()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var task = await h.SubmitAsync();
        await h.Queue.RemoveAsync(task.Id, Ct);

        var outcome = await h.Lifecycle.ReconcileAsync(task, Ct);

        Assert.Equal(ReconcileOutcome.Restored, outcome);
        Assert.Equal(task.Id, (await h.ClaimAsync()).TaskId);
        Assert.Equal(ReconcileOutcome.Intact, await h.Lifecycle.ReconcileAsync((await h.GetAsync(task.Id))!, Ct));
    }

    [Fact]
    public async Task Reconcile_RunningAttemptTheQueueLost_EndedAsLostAndQueuedAgainAtOnce()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        await h.SubmitAsync(LifecycleHarness.Spec(maxAttempts: 1));
        var (lease, task) = await h.StartAsync();
        await h.Queue.RemoveAsync(task.Id, Ct);

        var outcome = await h.Lifecycle.ReconcileAsync((await h.GetAsync(task.Id))!, Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal(ReconcileOutcome.RecoveredLostAttempt, outcome);
        Assert.Equal((TaskStatus.Pending, lease.Fence + 1), (stored.Status, stored.Fence));
        Assert.Null(await h.Lifecycle.FinishAsync(task, lease, "w1", AttemptEnd.Ran, Verdicted(Verdict.Ok), Ct));
        Assert.Equal(task.Id, (await h.ClaimAsync("w2")).TaskId);
    }
}
