namespace Runbox.Core.Tasks;

/// <summary>
/// The single source of truth for which status changes are legal. The store and the queue both
/// check every write against this table; nothing else decides it.
/// </summary>
public static class TaskStateMachine
{
    private static readonly Dictionary<TaskStatus, TaskStatus[]> Allowed = new()
    {
        [TaskStatus.Pending] = [TaskStatus.Running, TaskStatus.Cancelled],
        [TaskStatus.Running] = [TaskStatus.Completed, TaskStatus.Failed, TaskStatus.Timeout, TaskStatus.Cancelled],
        [TaskStatus.Failed] = [TaskStatus.Pending],
        [TaskStatus.Timeout] = [TaskStatus.Pending],
        [TaskStatus.Completed] = [],
        [TaskStatus.Cancelled] = [],
    };

    public static bool CanTransition(TaskStatus from, TaskStatus to) => Allowed[from].Contains(to);

    public static IReadOnlyList<TaskStatus> AllowedFrom(TaskStatus from) => Allowed[from];

    /// <summary>No transition leaves a terminal status, not even a retry.</summary>
    public static bool IsTerminal(TaskStatus status) => Allowed[status].Length == 0;

    /// <summary>Completed, failed, timeout and cancelled end an attempt; only some can be retried.</summary>
    public static bool IsFinished(TaskStatus status) => status is not (TaskStatus.Pending or TaskStatus.Running);

    public static void EnsureAllowed(TaskStatus from, TaskStatus to)
    {
        if (!CanTransition(from, to))
        {
            throw new InvalidTransitionException(from, to);
        }
    }
}

public sealed class InvalidTransitionException(TaskStatus from, TaskStatus to)
    : InvalidOperationException($"A task cannot go from {from.ToWire()} to {to.ToWire()}.")
{
    public TaskStatus From { get; } = from;
    public TaskStatus To { get; } = to;
}
