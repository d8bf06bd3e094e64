using Microsoft.Extensions.Logging;

namespace Runbox.Api;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "The queue had lost or changed {Changed} of {Users} users' concurrency limits (was Redis flushed or restarted without its data?); they are set again, and {Recounted} users' running counts were corrected")]
    public static partial void UserLimitsRestored(ILogger logger, int changed, int users, int recounted);

    [LoggerMessage(2, LogLevel.Warning, "Could not re-assert the users' concurrency limits; trying again at the next interval")]
    public static partial void UserLimitsPublishFailed(ILogger logger, Exception exception);

    [LoggerMessage(3, LogLevel.Warning, "Task {TaskId} is stored but could not be queued now; the reconciler queues it once Redis answers")]
    public static partial void EnqueueDeferred(ILogger logger, Exception exception, Guid taskId);

    [LoggerMessage(4, LogLevel.Warning, "Task {TaskId} is cancelled in the store but the queue could not be told now; a worker that claims it is refused")]
    public static partial void QueueCancelDeferred(ILogger logger, Exception exception, Guid taskId);
}
