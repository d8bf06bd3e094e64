using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Runbox.Core.Execution;
using Runbox.Core.Metrics;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Worker;

/// <summary>Why a run was stopped before it ended by itself.</summary>
internal enum StopReason
{
    None,
    UserCancel,
    LeaseLost,
    PastDeadline,
    Shutdown,
}

/// <summary>One claimed attempt in flight: its lease and the switch that stops its run.</summary>
internal sealed class ActiveAttempt(Lease lease) : IDisposable
{
    private int _reason;

    public Lease Lease { get; } = lease;
    public CancellationTokenSource Stop { get; } = new();
    public StopReason Reason => (StopReason)Volatile.Read(ref _reason);

    /// <summary>The first reason wins: a lost lease stays lost even if a cancel arrives after it.</summary>
    public void RequestStop(StopReason reason)
    {
        if (Interlocked.CompareExchange(ref _reason, (int)reason, (int)StopReason.None) == (int)StopReason.None)
        {
            Stop.Cancel();
        }
    }

    public void Dispose() => Stop.Dispose();
}

/// <summary>
/// Runs one claimed attempt from lease to committed result.
///
/// Delivery guarantee: at least once, never two attempts' results. Every write carries the
/// lease's fence; a worker that lost its lease writes nothing that sticks, and the reaper hands
/// the task to another worker. Checkpoints below say what a crash at that point leaves behind.
/// </summary>
internal sealed class AttemptRunner(
    ITaskStore store,
    ITaskQueue queue,
    ITaskEvents events,
    ISandbox sandbox,
    RunboxMetrics metrics,
    TimeProvider time,
    ILogger<AttemptRunner> logger)
{
    public async Task RunAsync(ActiveAttempt attempt, string workerId, CancellationToken cancellationToken)
    {
        var lease = attempt.Lease;

        // Checkpoint 1: Redis says we hold the lease, the store still says pending. A crash here
        // lets the lease expire; the reaper bumps the fence and requeues. Nothing ran.
        var start = await store.TransitionAsync(
            [new TransitionRequest(lease.TaskId, TaskStatus.Pending, TaskStatus.Running, "claimed") { Fence = lease.Fence, WorkerId = workerId }],
            cancellationToken);
        if (!start.Succeeded)
        {
            await SettleUnstartableAsync(lease, start, cancellationToken);
            return;
        }

        var task = start.Task!;
        var startedAt = time.GetUtcNow();
        metrics.Transitioned(TaskStatus.Running);
        metrics.AttemptStarted(startedAt - (task.Transitions.LastOrDefault(t => t.To == TaskStatus.Pending)?.At ?? task.CreatedAt));
        await events.PublishStatusesAsync(task, [TaskStatus.Running], cancellationToken);

        // Checkpoint 2: the store says running with our fence. A crash from here on leaves a lease
        // that expires; the reaper retries or dead-letters by policy and refuses our late writes.
        var watch = Stopwatch.StartNew();
        var result = await RunSandboxAsync(task, attempt, cancellationToken);
        watch.Stop();
        metrics.AttemptFinished(result.Verdict.ToWire(), watch.Elapsed);

        if (attempt.Reason == StopReason.LeaseLost)
        {
            Log.LeaseLost(logger, task.Id, task.Attempt);
            return;
        }

        var decision = Decide(task, attempt.Reason, ref result);
        var write = await store.TransitionAsync(
            decision.ToTransitions(task.Id, lease.Fence, workerId, ReasonOf(result, attempt.Reason), result),
            cancellationToken);
        if (!write.Succeeded)
        {
            // A newer attempt or a user action owns the task now; its state stands.
            metrics.StaleWriteRefused();
            Log.StaleWrite(logger, task.Id, lease.Fence, write.Conflict.ToString()!);
            return;
        }

        // Checkpoint 3: the result is in the store. A crash before the queue hears of it leaves a
        // lease that expires; the reaper's write is then refused and the reconciler drops the entry.
        await queue.FinishAsync(lease, decision.ToQueueOutcome(result.Error), cancellationToken);
        metrics.Transitioned(decision.Status);
        var statuses = decision.Retries ? new[] { decision.Status, TaskStatus.Pending } : [decision.Status];
        await events.PublishStatusesAsync(write.Task!, statuses, cancellationToken);
        Log.AttemptFinished(logger, task.Id, task.Attempt, decision.Status.ToWire(), result.Verdict.ToWire(), watch.ElapsedMilliseconds);
    }

    private async Task<ExecutionResult> RunSandboxAsync(TaskRecord task, ActiveAttempt attempt, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(attempt.Stop.Token, cancellationToken);
        var sink = new TaskEventsOutputSink(events, task.Id, task.Attempt, attempt.Lease.Fence);
        try
        {
            return await sandbox.RunAsync(task.Spec, sink, linked.Token);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.SandboxFailed(logger, exception, task.Id);
            return ExecutionResult.InternalError($"sandbox failure: {exception.Message}");
        }
    }

    /// <summary>The attempt number is the store's (counted when it moved to running), the one the record shows.</summary>
    private AttemptDecision Decide(TaskRecord task, StopReason reason, ref ExecutionResult result)
    {
        var now = time.GetUtcNow();
        switch (reason)
        {
            case StopReason.PastDeadline:
                // The queue's deadline is a backstop behind the sandbox's own timer: still a timeout.
                result = result with { Verdict = Verdict.TimeLimit, Error = "the attempt ran past its deadline" };
                break;
            case StopReason.Shutdown:
                // Handed back: the program did nothing wrong, the worker is going away. Retried at once
                // when the policy retries infrastructure failures, like a crashed worker's task.
                result = result with { Verdict = Verdict.InternalError, Error = "worker shut down during the attempt" };
                Log.HandedBack(logger, task.Id);
                var handBack = AttemptDecision.ForLostAttempt(TaskStatus.Failed, FailureKind.Infrastructure, task, task.Attempt, now, Random.Shared.NextDouble());
                return handBack.Retries ? handBack with { RetryAt = now } : handBack;
            case StopReason.UserCancel:
                result = result with { Verdict = Verdict.Cancelled };
                break;
        }
        return AttemptDecision.ForResult(result, task, task.Attempt, now, Random.Shared.NextDouble());
    }

    private static string ReasonOf(ExecutionResult result, StopReason reason) => reason switch
    {
        StopReason.UserCancel => "cancelled by user",
        StopReason.Shutdown => "worker shut down",
        StopReason.PastDeadline => "past the attempt deadline",
        _ => result.Error is null ? $"verdict {result.Verdict.ToWire()}" : $"verdict {result.Verdict.ToWire()}: {result.Error}",
    };

    /// <summary>
    /// The queue handed out a task the store will not start: a user cancelled it a moment ago, it
    /// finished already (a crash after checkpoint 3), or a newer fence owns it. Make the queue agree
    /// with the store, the system of record.
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
        else if (actual == TaskStatus.Running)
        {
            // The store still shows an earlier attempt running: its worker died and the write that
            // should have closed it never happened. Our fence is newer, so close it as a lost attempt
            // and put the task straight back; the next claim starts it cleanly.
            var recover = await store.TransitionAsync(
                AttemptDecision.RequeueLost(time.GetUtcNow()).ToTransitions(lease.TaskId, lease.Fence, null, "previous attempt lost its worker",
                    ExecutionResult.InternalError("the worker running this attempt was lost"), "requeued after a lost attempt"),
                cancellationToken);
            if (recover.Succeeded)
            {
                await queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Retry, TaskStatus.Failed) { RetryAt = time.GetUtcNow() }, cancellationToken);
                await events.PublishStatusesAsync(recover.Task!, [TaskStatus.Failed, TaskStatus.Pending], cancellationToken);
            }
        }
        else
        {
            await queue.RemoveAsync(lease.TaskId, cancellationToken);
        }
    }
}
