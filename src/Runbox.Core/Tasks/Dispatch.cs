using Runbox.Core.Seams;

namespace Runbox.Core.Tasks;

public static class Dispatch
{
    /// <summary>
    /// What the queue needs to dispatch this task's next attempt; its deadline is the run's wall time plus
    /// <paramref name="compileAllowance"/> (compiling has its own budget) plus <paramref name="deadlineSlack"/>.
    /// </summary>
    public static QueueItem ToQueueItem(this TaskRecord task, TimeSpan compileAllowance, TimeSpan deadlineSlack) => new(task.Id, task.User, task.Spec.Priority)
    {
        Fence = task.Fence,
        Attempt = task.Attempt,
        MaxAttempts = task.MaxAttempts,
        RunDeadline = task.Spec.Limits.WallTime + compileAllowance + deadlineSlack,
        RunAt = task.NextAttemptAt,
    };
}
