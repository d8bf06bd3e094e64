using Runbox.Core.Seams;

namespace Runbox.Core.Tasks;

public static class Dispatch
{
    /// <summary>Compiling gets its own budget on top of the run's wall time.</summary>
    public static readonly TimeSpan CompileAllowance = TimeSpan.FromSeconds(60);

    /// <summary>What the queue needs to dispatch this task's next attempt.</summary>
    public static QueueItem ToQueueItem(this TaskRecord task, TimeSpan deadlineSlack) => new(task.Id, task.User, task.Spec.Priority)
    {
        Fence = task.Fence,
        Attempt = task.Attempt,
        MaxAttempts = task.MaxAttempts,
        RunDeadline = task.Spec.Limits.WallTime + CompileAllowance + deadlineSlack,
        RunAt = task.NextAttemptAt,
    };
}
