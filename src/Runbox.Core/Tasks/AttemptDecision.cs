using Runbox.Core.Execution;
using Runbox.Core.Retry;
using Runbox.Core.Seams;

namespace Runbox.Core.Tasks;

/// <summary>
/// Where a finished attempt leaves its task: the status it ends in, and whether it goes back to
/// pending (and when) or is dead-lettered. One place decides this for the worker, the reaper and
/// the reconciler, so they can never disagree.
/// </summary>
public sealed record AttemptDecision(TaskStatus Status, FailureKind? Failure, DateTimeOffset? RetryAt, bool DeadLetter)
{
    public bool Retries => RetryAt is not null;

    /// <summary>Decides from a result the sandbox returned.</summary>
    public static AttemptDecision ForResult(ExecutionResult result, TaskRecord task, int attempt, DateTimeOffset now, double random)
    {
        var status = StatusOf(result);
        var failure = FailureKindNames.FromVerdict(result.Verdict);
        return Decide(status, failure, task, attempt, now, random);
    }

    /// <summary>Decides for an attempt that ended without a result (lost lease, crashed worker).</summary>
    public static AttemptDecision ForLostAttempt(TaskStatus status, FailureKind failure, TaskRecord task, int attempt, DateTimeOffset now, double random) =>
        Decide(status, failure, task, attempt, now, random);

    /// <summary>
    /// An attempt that the infrastructure lost (its worker died between two writes, or the queue lost
    /// it): recorded as failed and put straight back, outside the retry budget, because the program
    /// never got a fair run.
    /// </summary>
    public static AttemptDecision RequeueLost(DateTimeOffset now) => new(TaskStatus.Failed, FailureKind.Infrastructure, now, false);

    /// <summary>The decision the queue's reaper already made for an expired lease.</summary>
    public static AttemptDecision FromQueue(AttemptOutcome outcome) => new(
        outcome.Status,
        outcome.Status switch
        {
            TaskStatus.Timeout => FailureKind.Timeout,
            TaskStatus.Failed => FailureKind.Infrastructure,
            _ => null,
        },
        outcome.Kind == OutcomeKind.Retry ? outcome.RetryAt : null,
        outcome.Kind == OutcomeKind.DeadLetter);

    public static TaskStatus StatusOf(ExecutionResult result) => result.Verdict switch
    {
        Verdict.Ok => TaskStatus.Completed,
        Verdict.TimeLimit => TaskStatus.Timeout,
        Verdict.Cancelled => TaskStatus.Cancelled,
        _ => TaskStatus.Failed,
    };

    private static AttemptDecision Decide(TaskStatus status, FailureKind? failure, TaskRecord task, int attempt, DateTimeOffset now, double random)
    {
        if (status is not (TaskStatus.Failed or TaskStatus.Timeout) || failure is null)
        {
            return new AttemptDecision(status, failure, null, false);
        }
        var policy = task.Spec.Retry;
        if (policy.ShouldRetry(failure.Value, attempt, task.MaxAttempts))
        {
            return new AttemptDecision(status, failure, now + policy.Backoff(attempt, random), false);
        }
        // Out of attempts for a kind the client wanted retried: keep it for a human (the DLQ).
        // A failure the policy never retries (a compile error, a plain runtime error) just ends.
        var deadLetter = failure != FailureKind.CompileError && policy.On.Contains(failure.Value);
        return new AttemptDecision(status, failure, null, deadLetter);
    }

    /// <summary>The store steps that record this decision: running → status [→ pending].</summary>
    public IReadOnlyList<TransitionRequest> ToTransitions(Guid taskId, long fence, string? workerId, string reason, ExecutionResult? result, string? retryReason = null)
    {
        var finish = new TransitionRequest(taskId, TaskStatus.Running, Status, reason)
        {
            Fence = fence,
            WorkerId = workerId,
            Result = result,
            DeadLettered = DeadLetter ? true : null,
        };
        if (RetryAt is null)
        {
            return [finish];
        }
        var retry = new TransitionRequest(taskId, Status, TaskStatus.Pending, retryReason ?? $"retry scheduled after {Failure?.ToWire() ?? "failure"}")
        {
            Fence = fence,
            WorkerId = workerId,
            NextAttemptAt = RetryAt,
        };
        return [finish, retry];
    }

    /// <summary>The same decision for the queue.</summary>
    public AttemptOutcome ToQueueOutcome(string? error) => new(
        Status switch
        {
            TaskStatus.Completed => OutcomeKind.Completed,
            TaskStatus.Cancelled => OutcomeKind.Cancelled,
            _ when RetryAt is not null => OutcomeKind.Retry,
            _ when DeadLetter => OutcomeKind.DeadLetter,
            _ => OutcomeKind.Failed,
        },
        Status)
    {
        RetryAt = RetryAt,
        Error = error,
    };
}
