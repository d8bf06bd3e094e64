using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Execution;
using Runbox.Core.Metrics;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Lifecycle;

/// <summary>What a cancel did.</summary>
public enum CancelOutcome
{
    /// <summary>The task was pending and is cancelled now.</summary>
    Cancelled,
    /// <summary>The task is running: its worker (or the reaper) is told and ends the attempt as cancelled.</summary>
    Requested,
    /// <summary>The task had already settled, or changed meanwhile: nothing was done.</summary>
    TooLate,
}

/// <summary>Which kind of manual requeue.</summary>
public enum RequeueKind
{
    /// <summary>A failed or timed-out task, retried by hand: it gets one attempt more even when its budget is spent.</summary>
    Retry,
    /// <summary>A dead-lettered task, requeued from the dead letters with a fresh budget of its max_attempts.</summary>
    DeadLetter,
}

/// <summary>What a reconciliation of one task found.</summary>
public enum ReconcileOutcome
{
    Intact,
    /// <summary>The queue lacked the task, or its place in the queue, and has it again.</summary>
    Restored,
    /// <summary>The store had the task running and the queue had lost the attempt: it was ended and the task queued again.</summary>
    RecoveredLostAttempt,
}

/// <summary>
/// The one place a task changes state. Each operation takes an intent (submit, start, finish, lost lease,
/// cancel, requeue, reconcile), asks <see cref="AttemptDecision"/> what follows, commits it in the store
/// (fenced, all or nothing), mirrors it to the queue, announces each status it passed through and counts
/// each one. The store is the system of record: once it committed, a queue or events failure is logged and
/// left to the reconciler, the reaper or the next store read, never turned into a failed operation.
/// </summary>
public sealed class TaskLifecycle(
    ITaskStore store,
    ITaskQueue queue,
    ITaskEvents events,
    RunboxMetrics metrics,
    IOptions<LifecycleOptions> options,
    TimeProvider time,
    ILogger<TaskLifecycle> logger)
{
    private readonly LifecycleOptions _options = options.Value;

    /// <summary>What the queue needs for the task's next attempt, with this deployment's deadline slack.</summary>
    public QueueItem QueueItemOf(TaskRecord task) => task.ToQueueItem(_options.CompileAllowance, _options.DeadlineSlack);

    /// <summary>
    /// Records a new pending task, then queues it. With an idempotency key already used, returns the first task
    /// and changes nothing. A task the store took is accepted even if Redis cannot be reached (the reconciler
    /// queues it): an error would make the client submit it twice.
    /// </summary>
    public async Task<CreateTaskResult> SubmitAsync(NewTask task, CancellationToken cancellationToken)
    {
        var created = await store.CreateAsync(task, cancellationToken);
        if (created.Created)
        {
            metrics.TaskSubmitted();
            metrics.Transitioned(TaskStatus.Pending);
            await MirrorAndAnnounceAsync(created.Task.Id, created.Task.Attempt, [TaskStatus.Pending], () => queue.EnqueueAsync(QueueItemOf(created.Task), cancellationToken), cancellationToken);
        }
        return created;
    }

    /// <summary>
    /// Starts the attempt a worker claimed (pending → running under the lease's fence); returns the running
    /// task, or null when the store will not start it (cancelled a moment ago, finished already, or a newer
    /// fence owns it), in which case the queue is made to agree with the store.
    /// </summary>
    public async Task<TaskRecord?> StartAsync(Lease lease, string workerId, CancellationToken cancellationToken)
    {
        var step = new TransitionRequest(lease.TaskId, TaskStatus.Pending, TaskStatus.Running, "claimed") { Fence = lease.Fence, WorkerId = workerId };
        var start = await store.TransitionAsync([step], cancellationToken);
        if (start.Succeeded)
        {
            Count([step]);
            await AnnounceAsync(start.Task!.Id, start.Task.Attempt, [TaskStatus.Running], cancellationToken);
            return start.Task;
        }
        await SettleUnstartableAsync(lease, start, cancellationToken);
        return null;
    }

    /// <summary>
    /// Ends an attempt the worker ran: decides where the task goes (its own retry policy), records the result with
    /// the lease's fence, finishes the attempt in the queue and announces it. Returns the decision, or null when
    /// the write was refused (a newer attempt or a user action owns the task).
    /// </summary>
    public async Task<AttemptDecision?> FinishAsync(TaskRecord task, Lease lease, string workerId, AttemptEnd end, ExecutionResult result, CancellationToken cancellationToken)
    {
        var (decision, recorded) = AttemptDecision.ForEnd(end, result, task, time.GetUtcNow(), Random.Shared.NextDouble());
        var reason = end switch
        {
            AttemptEnd.Cancelled => "cancelled by user",
            AttemptEnd.Shutdown => "worker shut down",
            AttemptEnd.PastDeadline => "past the attempt deadline",
            _ => recorded.Error is null ? $"verdict {recorded.Verdict.ToWire()}" : $"verdict {recorded.Verdict.ToWire()}: {recorded.Error}",
        };
        var steps = decision.ToTransitions(task.Id, lease.Fence, workerId, reason, recorded);
        var write = await store.CommitAsync(steps, cancellationToken);
        if (!write.Succeeded)
        {
            metrics.StaleWriteRefused();
            Log.StaleWrite(logger, task.Id, lease.Fence, write.Conflict.ToString()!);
            return null;
        }
        // A crash before the queue hears of it leaves a lease that expires; the reaper's write is then
        // refused and it lets go of the entry.
        Count(steps);
        await MirrorAndAnnounceAsync(task.Id, task.Attempt, decision.Statuses, () => queue.FinishAsync(lease, decision.ToQueueOutcome(recorded.Error), cancellationToken), cancellationToken);
        return decision;
    }

    /// <summary>
    /// Ends an attempt the reaper took over from a worker that lost its lease (<see cref="ITaskQueue.ReapAsync"/>):
    /// decided like every attempt, with the task's own retry policy, recorded with the new fence (so the lost
    /// worker's late writes are refused) and finished in the queue under it. Returns the status the task ended
    /// the attempt in, or null when the store had already settled it (its worker committed and died before
    /// telling the queue) and the queue let go of it.
    /// </summary>
    public async Task<TaskStatus?> EndLostLeaseAsync(ReapedTask reaped, CancellationToken cancellationToken)
    {
        var task = await store.GetAsync(reaped.TaskId, cancellationToken);
        if (task is null || task.Status != TaskStatus.Running)
        {
            Log.DroppedSettled(logger, reaped.TaskId, task?.Status.ToWire() ?? "deleted");
            await queue.RemoveAsync(reaped.TaskId, cancellationToken);
            return null;
        }
        var (decision, result) = AttemptDecision.ForLostLease(reaped, task, _options.MaxStalls, time.GetUtcNow(), Random.Shared.NextDouble());
        var steps = decision.ToTransitions(task.Id, reaped.NewFence, null, "lease expired", result, "retry after lost lease");
        var write = await store.CommitAsync(steps, cancellationToken);
        if (!write.Succeeded)
        {
            if (write.Conflict == TransitionConflict.NotFound || write.ActualStatus is not TaskStatus.Running)
            {
                Log.DroppedSettled(logger, reaped.TaskId, write.ActualStatus?.ToWire() ?? "deleted");
                await queue.RemoveAsync(reaped.TaskId, cancellationToken);
            }
            return null;
        }
        Log.LeaseLostEnded(logger, reaped.TaskId, decision.Status.ToWire(), reaped.NewFence, reaped.Stalls);
        Count(steps);
        await MirrorAndAnnounceAsync(task.Id, task.Attempt, decision.Statuses, () => queue.FinishAsync(reaped.Lease, decision.ToQueueOutcome(result.Error), cancellationToken), cancellationToken);
        return decision.Status;
    }

    /// <summary>
    /// Cancels a task for its user: a pending one at once (a worker that claims it meanwhile is refused by the
    /// store and lets go), a running one by telling its worker, which ends the attempt as cancelled.
    /// </summary>
    public async Task<(CancelOutcome Outcome, TaskRecord? Task)> CancelAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        if (task.Status == TaskStatus.Pending)
        {
            var step = new TransitionRequest(task.Id, TaskStatus.Pending, TaskStatus.Cancelled, "cancelled by user");
            var write = await store.TransitionAsync([step], cancellationToken);
            if (write.Succeeded)
            {
                Count([step]);
                await MirrorAndAnnounceAsync(task.Id, task.Attempt, [TaskStatus.Cancelled], () => queue.CancelAsync(task.Id, cancellationToken), cancellationToken);
                return (CancelOutcome.Cancelled, write.Task);
            }
            task = await store.GetAsync(task.Id, cancellationToken) ?? task;
        }
        if (task.Status == TaskStatus.Running)
        {
            // The worker owns the running attempt: it stops the run and writes the outcome with its fence
            // (or the reaper does, if the worker is gone). Not a transition of its own.
            await queue.CancelAsync(task.Id, cancellationToken);
            return (CancelOutcome.Requested, task);
        }
        return (CancelOutcome.TooLate, task);
    }

    /// <summary>
    /// Puts a failed or timed-out task back to pending by hand. Returns the task as it is now, and whether the
    /// store took the change (false: it changed meanwhile).
    /// </summary>
    public async Task<(bool Requeued, TaskRecord Task)> RequeueAsync(TaskRecord task, RequeueKind kind, CancellationToken cancellationToken)
    {
        var (maxAttempts, reason) = kind switch
        {
            // A manual retry always gets its attempt, even when the automatic budget is spent.
            RequeueKind.Retry => (Math.Max(task.MaxAttempts, task.Attempt + 1), "retried by user"),
            // A fresh budget of max_attempts on top of the attempts made; attempt keeps counting.
            _ => (task.Attempt + task.Spec.Retry.MaxAttempts, "requeued from dead letters"),
        };
        var step = new TransitionRequest(task.Id, task.Status, TaskStatus.Pending, reason) { MaxAttempts = maxAttempts, DeadLettered = false };
        var write = await store.TransitionAsync([step], cancellationToken);
        if (!write.Succeeded)
        {
            return (false, await store.GetAsync(task.Id, cancellationToken) ?? task);
        }
        var requeued = write.Task!;
        var item = QueueItemOf(requeued) with { RunAt = null };
        Count([step]);
        await MirrorAndAnnounceAsync(requeued.Id, requeued.Attempt, [TaskStatus.Pending], () => task.DeadLettered ? queue.RequeueDeadLetterAsync(item, cancellationToken) : queue.EnqueueAsync(item, cancellationToken), cancellationToken);
        return (true, requeued);
    }

    /// <summary>
    /// Makes the queue hold a pending or running task as the store does (after Redis lost some or all of its
    /// data, or a crash between a store write and its queue write). A running task the queue no longer knows
    /// is ended as a lost attempt and queued again at once, outside its retry budget: the program never got
    /// a fair run.
    /// </summary>
    public async Task<ReconcileOutcome> ReconcileAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        var running = task.Status == TaskStatus.Running;
        var restore = await queue.RestoreAsync(QueueItemOf(task), running, cancellationToken);
        if (restore != QueueRestore.Lost)
        {
            return restore == QueueRestore.Restored ? ReconcileOutcome.Restored : ReconcileOutcome.Intact;
        }
        // One above the stored fence: the lost worker's writes (if it still lives) are refused, and the
        // queue hands out fences above this one.
        var requeued = await RequeueLostAsync(task, task.Fence + 1, "the queue lost this attempt", "the dispatch queue lost the running attempt", lease: null, cancellationToken);
        return requeued ? ReconcileOutcome.RecoveredLostAttempt : ReconcileOutcome.Intact;
    }

    /// <summary>
    /// The queue handed out a task the store will not start. Make the queue agree with the store, the
    /// system of record.
    /// </summary>
    private async Task SettleUnstartableAsync(Lease lease, TransitionResult start, CancellationToken cancellationToken)
    {
        switch (start.Conflict)
        {
            case TransitionConflict.StaleFence:
                metrics.StaleWriteRefused();
                Log.StaleWrite(logger, lease.TaskId, lease.Fence, nameof(TransitionConflict.StaleFence));
                return;
            case TransitionConflict.NotFound:
                await queue.RemoveAsync(lease.TaskId, cancellationToken);
                return;
        }

        var actual = start.ActualStatus ?? TaskStatus.Cancelled;
        Log.ClaimedButNotPending(logger, lease.TaskId, actual.ToWire());
        if (actual == TaskStatus.Cancelled)
        {
            await queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Cancelled, TaskStatus.Cancelled), cancellationToken);
        }
        else if (actual == TaskStatus.Running && await store.GetAsync(lease.TaskId, cancellationToken) is { } stuck)
        {
            // The store still shows an earlier attempt running: its worker died and the write that should have
            // closed it never happened. Our fence is newer, so close it as a lost attempt and put the task
            // straight back; the next claim starts it cleanly.
            await RequeueLostAsync(stuck, lease.Fence, "previous attempt lost its worker", "the worker running this attempt was lost", lease, cancellationToken);
        }
        else
        {
            await queue.RemoveAsync(lease.TaskId, cancellationToken);
        }
    }

    /// <summary>Ends a running attempt the infrastructure lost and queues the task again at once (under <paramref name="lease"/> when one is held).</summary>
    private async Task<bool> RequeueLostAsync(TaskRecord task, long fence, string reason, string error, Lease? lease, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var decision = AttemptDecision.RequeueLost(now);
        var steps = decision.ToTransitions(task.Id, fence, null, reason, ExecutionResult.InternalError(error), "requeued after a lost attempt");
        var write = await store.TransitionAsync(steps, cancellationToken);
        if (!write.Succeeded)
        {
            return false;
        }
        Log.LostAttemptRequeued(logger, task.Id, reason);
        Count(steps);
        await MirrorAndAnnounceAsync(task.Id, task.Attempt, decision.Statuses,
            () => lease is null
                ? queue.EnqueueAsync(QueueItemOf(write.Task!) with { RunAt = null }, cancellationToken)
                : queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Retry, TaskStatus.Failed) { RetryAt = now }, cancellationToken),
            cancellationToken);
        return true;
    }

    private void Count(IEnumerable<TransitionRequest> steps)
    {
        foreach (var step in steps)
        {
            metrics.Transitioned(step.To);
        }
    }

    /// <summary>The queue's half of a committed change, then its statuses; a failure of either is logged, not thrown.</summary>
    private async Task MirrorAndAnnounceAsync(Guid taskId, int attempt, IReadOnlyList<TaskStatus> statuses, Func<Task> mirror, CancellationToken cancellationToken)
    {
        try
        {
            await mirror();
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The store has it; the reconciler (a pending task the queue lacks) or the reaper (a lease that
            // expires) brings the queue back in line once Redis answers.
            Log.MirrorDeferred(logger, exception, taskId, statuses[^1].ToWire());
        }
        await AnnounceAsync(taskId, attempt, statuses, cancellationToken);
    }

    private async Task AnnounceAsync(Guid taskId, int attempt, IReadOnlyList<TaskStatus> statuses, CancellationToken cancellationToken)
    {
        try
        {
            await events.PublishStatusesAsync(taskId, attempt, statuses, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // Followers fall back to reading the store (they recheck it on a timer).
            Log.AnnounceFailed(logger, exception, taskId);
        }
    }
}
