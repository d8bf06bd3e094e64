using Microsoft.Extensions.Logging;
using Runbox.Core.Execution;
using Runbox.Core.Metrics;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Lifecycle;

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
/// Runs one claimed attempt from lease to committed result; every state change goes through the
/// lifecycle engine.
///
/// Delivery guarantee: at least once, never two attempts' results. Every write carries the
/// lease's fence; a worker that lost its lease writes nothing that sticks, and the reaper hands
/// the task to another worker. Checkpoints below say what a crash at that point leaves behind.
/// </summary>
internal sealed class AttemptRunner(
    TaskLifecycle lifecycle,
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
        var task = await lifecycle.StartAsync(lease, workerId, cancellationToken);
        if (task is null)
        {
            return;
        }
        metrics.AttemptStarted(time.GetUtcNow() - (task.Transitions.LastOrDefault(t => t.To == TaskStatus.Pending)?.At ?? task.CreatedAt));

        // Checkpoint 2: the store says running with our fence. A crash from here on leaves a lease
        // that expires; the reaper ends the attempt by the task's policy and refuses our late writes.
        var started = time.GetTimestamp();
        var result = await RunSandboxAsync(task, attempt, cancellationToken);
        var elapsed = time.GetElapsedTime(started);
        metrics.AttemptFinished(result.Verdict.ToWire(), elapsed);

        if (attempt.Reason == StopReason.LeaseLost)
        {
            Log.LeaseLost(logger, task.Id, task.Attempt);
            return;
        }

        // Checkpoint 3: the engine commits the result, then tells the queue. A crash in between leaves a
        // lease that expires; the reaper's write is then refused and it lets go of the queue entry.
        var decision = await lifecycle.FinishAsync(task, lease, workerId, EndOf(attempt.Reason), result, cancellationToken);
        if (decision is not null)
        {
            if (attempt.Reason == StopReason.Shutdown)
            {
                Log.HandedBack(logger, task.Id);
            }
            Log.AttemptFinished(logger, task.Id, task.Attempt, decision.Status.ToWire(), result.Verdict.ToWire(), (long)elapsed.TotalMilliseconds);
        }
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

    private static AttemptEnd EndOf(StopReason reason) => reason switch
    {
        StopReason.UserCancel => AttemptEnd.Cancelled,
        StopReason.PastDeadline => AttemptEnd.PastDeadline,
        StopReason.Shutdown => AttemptEnd.Shutdown,
        _ => AttemptEnd.Ran,
    };
}
