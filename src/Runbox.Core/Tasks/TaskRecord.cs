using Runbox.Core.Execution;

namespace Runbox.Core.Tasks;

/// <summary>A task as the store holds it: the spec, where it is in the state machine, and its latest result.</summary>
public sealed record TaskRecord
{
    public required Guid Id { get; init; }
    public required TaskSpec Spec { get; init; }
    public required TaskStatus Status { get; init; }

    /// <summary>Attempts started so far (0 until the first claim); it keeps counting across requeues.</summary>
    public int Attempt { get; init; }

    /// <summary>The attempt number after which no automatic retry happens. A dead-letter requeue raises it.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>The fence of the newest writer; a write with a lower fence is stale.</summary>
    public long Fence { get; init; }

    public string? IdempotencyKey { get; init; }
    public string? WorkerId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public DateTimeOffset? NextAttemptAt { get; init; }
    public bool DeadLettered { get; init; }

    /// <summary>The latest finished attempt's result, or null before any attempt finished.</summary>
    public ExecutionResult? Result { get; init; }

    public IReadOnlyList<TaskTransition> Transitions { get; init; } = [];

    public string User => Spec.User;
}

/// <summary>One recorded status change. <see cref="From"/> is null for the submission.</summary>
public sealed record TaskTransition(
    TaskStatus? From,
    TaskStatus To,
    DateTimeOffset At,
    int Attempt,
    string Reason,
    string? WorkerId);
