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

    [LoggerMessage(5, LogLevel.Warning, "Task {TaskId}: lease lost during attempt {Attempt}; stopping the run and writing nothing")]
    public static partial void LeaseLost(ILogger logger, Guid taskId, int attempt);

    [LoggerMessage(6, LogLevel.Error, "Task {TaskId}: the sandbox failed")]
    public static partial void SandboxFailed(ILogger logger, Exception exception, Guid taskId);

    [LoggerMessage(7, LogLevel.Error, "Worker loop error; retrying shortly")]
    public static partial void LoopError(ILogger logger, Exception exception);

    [LoggerMessage(12, LogLevel.Information, "Retention: deleted {Count} finished tasks older than {Cutoff}")]
    public static partial void Retained(ILogger logger, int count, DateTimeOffset cutoff);

    [LoggerMessage(13, LogLevel.Information, "Task {TaskId}: handed back on shutdown")]
    public static partial void HandedBack(ILogger logger, Guid taskId);

    [LoggerMessage(17, LogLevel.Information, "Reconciler: task {TaskId} ({Status} in the store): {Outcome}")]
    public static partial void Reconciled(ILogger logger, Guid taskId, string status, string outcome);

    [LoggerMessage(18, LogLevel.Information, "Worker {WorkerId} {Change} the lead of the maintenance (reaper, reconciler, retention)")]
    public static partial void MaintenanceLead(ILogger logger, string workerId, string change);

    [LoggerMessage(16, LogLevel.Warning, "Reconciler: the running counts of {Users} users did not match their running tasks (Redis lost data) and were corrected")]
    public static partial void RunningRecounted(ILogger logger, int users);
}
