using Microsoft.Extensions.Logging;

namespace Runbox.Worker;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Worker {WorkerId} started with {Slots} slots")]
    public static partial void WorkerStarted(ILogger logger, string workerId, int slots);

    [LoggerMessage(2, LogLevel.Information, "Worker {WorkerId} stopping: {Running} attempts still running, waiting up to {Grace}")]
    public static partial void WorkerStopping(ILogger logger, string workerId, int running, TimeSpan grace);

    [LoggerMessage(3, LogLevel.Information, "Task {TaskId} attempt {Attempt} finished: {Status} ({Verdict}) in {ElapsedMs} ms")]
    public static partial void AttemptFinished(ILogger logger, Guid taskId, int attempt, string status, string verdict, long elapsedMs);

    [LoggerMessage(4, LogLevel.Warning, "Task {TaskId}: write with fence {Fence} refused ({Conflict}); a newer attempt owns the task")]
    public static partial void StaleWrite(ILogger logger, Guid taskId, long fence, string conflict);

    [LoggerMessage(5, LogLevel.Warning, "Task {TaskId}: lease lost during attempt {Attempt}; stopping the run and writing nothing")]
    public static partial void LeaseLost(ILogger logger, Guid taskId, int attempt);

    [LoggerMessage(6, LogLevel.Error, "Task {TaskId}: the sandbox failed")]
    public static partial void SandboxFailed(ILogger logger, Exception exception, Guid taskId);

    [LoggerMessage(7, LogLevel.Error, "Worker loop error; retrying shortly")]
    public static partial void LoopError(ILogger logger, Exception exception);

    [LoggerMessage(8, LogLevel.Information, "Reaper: task {TaskId} lease expired; now {Status} (fence {Fence})")]
    public static partial void Reaped(ILogger logger, Guid taskId, string status, long fence);

    [LoggerMessage(9, LogLevel.Information, "Reconciler: restored pending task {TaskId}, which the queue had lost or could no longer reach")]
    public static partial void Reenqueued(ILogger logger, Guid taskId);

    [LoggerMessage(10, LogLevel.Information, "Reconciler: dropped queue entry for task {TaskId}, which the store finished as {Status}")]
    public static partial void DroppedFinished(ILogger logger, Guid taskId, string status);

    [LoggerMessage(11, LogLevel.Warning, "Reconciler: task {TaskId} was running in the store but the queue lost it; retrying it as an infrastructure failure")]
    public static partial void RecoveredRunning(ILogger logger, Guid taskId);

    [LoggerMessage(12, LogLevel.Information, "Retention: deleted {Count} finished tasks older than {Cutoff}")]
    public static partial void Retained(ILogger logger, int count, DateTimeOffset cutoff);

    [LoggerMessage(13, LogLevel.Information, "Task {TaskId}: handed back on shutdown")]
    public static partial void HandedBack(ILogger logger, Guid taskId);

    [LoggerMessage(14, LogLevel.Warning, "Task {TaskId}: claimed but the store has it as {Status}; settling the queue to match")]
    public static partial void ClaimedButNotPending(ILogger logger, Guid taskId, string status);

    [LoggerMessage(15, LogLevel.Information, "Reconciler: running task {TaskId} had lost its lease entry; the reaper sees it again")]
    public static partial void LeaseRestored(ILogger logger, Guid taskId);

    [LoggerMessage(16, LogLevel.Warning, "Reconciler: the running counts of {Users} users did not match their running tasks (Redis lost data) and were corrected")]
    public static partial void RunningRecounted(ILogger logger, int users);
}
