using Runbox.Core.Execution;
using Runbox.Core.Retry;
using Runbox.Core.Seams;

namespace Runbox.Core.Tasks;

/// <summary>How an attempt's run came to its end, as the worker saw it.</summary>
public enum AttemptEnd
{
    /// <summary>The sandbox ran it to its end (whatever the program did).</summary>
    Ran,
    /// <summary>The user cancelled it while it ran.</summary>
    Cancelled,
    /// <summary>The queue's deadline passed (a backstop behind the sandbox's own timer).</summary>
    PastDeadline,
    /// <summary>The worker is shutting down and handed the attempt back.</summary>
    Shutdown,
}

/// <summary>
/// Where an ended attempt leaves its task: the status it ends in, and whether it goes back to
/// pending (and when) or is dead-lettered. The one decision for the worker, the reaper and the
/// reconciler, always with the task's own <see cref="RetryPolicy"/>, so they can never disagree.
/// </summary>
public sealed record AttemptDecision(TaskStatus Status, FailureKind? Failure, DateTimeOffset? RetryAt, bool DeadLetter)
{
    public bool Retries => RetryAt is not null;

    /// <summary>The statuses the task passes through: the attempt's end, then pending when it is retried.</summary>
    public IReadOnlyList<TaskStatus> Statuses => Retries ? [Status, TaskStatus.Pending] : [Status];

    /// <summary>Decides for an attempt whose run ended as <paramref name="end"/> says; also returns the result as it is recorded.</summary>
    public static (AttemptDecision Decision, ExecutionResult Result) ForEnd(AttemptEnd end, ExecutionResult result, TaskRecord task, DateTimeOffset now, double random)
    {
        switch (end)
        {
            case AttemptEnd.PastDeadline:
                result = result with { Verdict = Verdict.TimeLimit, Error = "the attempt ran past its deadline" };
                break;
            case AttemptEnd.Shutdown:
                // Handed back: the program did nothing wrong, the worker is going away. Retried at once
                // when the policy retries infrastructure failures, like a crashed worker's task.
                result = result with { Verdict = Verdict.InternalError, Error = "worker shut down during the attempt" };
                var handBack = ForLostAttempt(TaskStatus.Failed, FailureKind.Infrastructure, task, task.Attempt, now, random);
                return (handBack.Retries ? handBack with { RetryAt = now } : handBack, result);
            case AttemptEnd.Cancelled:
                result = result with { Verdict = Verdict.Cancelled };
                break;
        }
        return (ForResult(result, task, task.Attempt, now, random), result);
    }

    /// <summary>
    /// Decides for an attempt whose worker lost its lease (crashed, froze, was cut off) and which the reaper
    /// took over: cancelled if the user asked, a timeout past its deadline, else an infrastructure failure,
    /// each retried by the task's policy; a task that lost its lease more than <paramref name="maxStalls"/>
    /// times is a poison pill and is dead-lettered.
    /// </summary>
    public static (AttemptDecision Decision, ExecutionResult Result) ForLostLease(ReapedTask reaped, TaskRecord task, int maxStalls, DateTimeOffset now, double random)
    {
        if (reaped.CancelRequested)
        {
            return (new AttemptDecision(TaskStatus.Cancelled, null, null, false),
                new ExecutionResult { Verdict = Verdict.Cancelled, Error = "cancelled while its worker was unreachable" });
        }
        var (status, failure, result) = reaped.PastDeadline
            ? (TaskStatus.Timeout, FailureKind.Timeout, new ExecutionResult { Verdict = Verdict.TimeLimit, Error = "the attempt ran past its deadline and its worker did not finish it" })
            : (TaskStatus.Failed, FailureKind.Infrastructure, ExecutionResult.InternalError(LeaseLostError));
        if (reaped.Stalls > maxStalls)
        {
            return (new AttemptDecision(status, failure, null, DeadLetter: true),
                result with { Error = $"{result.Error}; it lost its lease {reaped.Stalls} times, so it is dead-lettered as a poison pill" });
        }
        return (ForLostAttempt(status, failure, task, task.Attempt, now, random), result);
    }

    /// <summary>The error of an attempt whose worker lost its lease.</summary>
    public const string LeaseLostError = "the worker lost its lease (crashed, frozen or cut off)";

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
