using Microsoft.Extensions.Logging;

namespace Runbox.Lifecycle;

/// <summary>Every log line of the lifecycle engine. User source and stdin are never logged.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "Task {TaskId}: write with fence {Fence} refused ({Conflict}); a newer attempt or a user action owns the task")]
    public static partial void StaleWrite(ILogger logger, Guid taskId, long fence, string conflict);

    [LoggerMessage(2, LogLevel.Warning, "Task {TaskId}: claimed but the store has it as {Status}; settling the queue to match")]
    public static partial void ClaimedButNotPending(ILogger logger, Guid taskId, string status);

    [LoggerMessage(3, LogLevel.Information, "Task {TaskId}: lease lost; the attempt ends {Status} (fence {Fence}, stall {Stalls})")]
    public static partial void LeaseLostEnded(ILogger logger, Guid taskId, string status, long fence, int stalls);

    [LoggerMessage(4, LogLevel.Information, "Task {TaskId}: dropped from the queue, the store has it {Status}")]
    public static partial void DroppedSettled(ILogger logger, Guid taskId, string status);

    [LoggerMessage(5, LogLevel.Warning, "Task {TaskId}: {Reason}; recorded as an infrastructure failure and queued again")]
    public static partial void LostAttemptRequeued(ILogger logger, Guid taskId, string reason);

    [LoggerMessage(6, LogLevel.Warning, "Task {TaskId} is {Status} in the store but the queue could not be told now; the reconciler or the reaper brings it in line")]
    public static partial void MirrorDeferred(ILogger logger, Exception exception, Guid taskId, string status);

    [LoggerMessage(7, LogLevel.Warning, "Task {TaskId}: its status could not be announced; followers read the store instead")]
    public static partial void AnnounceFailed(ILogger logger, Exception exception, Guid taskId);
}
