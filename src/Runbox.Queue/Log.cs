using Microsoft.Extensions.Logging;

namespace Runbox.Queue;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Redis had lost the queue scripts (NOSCRIPT on {Script}); loaded them again")]
    public static partial void ScriptsReloaded(ILogger logger, string script);

    [LoggerMessage(2, LogLevel.Warning, "Dead-letter set over its cap of {Cap}: trimmed the {Trimmed} oldest dead letters")]
    public static partial void DeadLettersTrimmed(ILogger logger, int cap, long trimmed);

    [LoggerMessage(3, LogLevel.Information, "Stale write refused for task {TaskId} with fence {Fence} ({Outcome})")]
    public static partial void StaleFinish(ILogger logger, Guid taskId, long fence, string outcome);

    [LoggerMessage(4, LogLevel.Information, "Took over task {TaskId} of {User}: lease expired, new fence {Fence}, attempt {Attempt}, stall {Stalls}")]
    public static partial void Reaped(ILogger logger, Guid taskId, string user, long fence, int attempt, int stalls);

    [LoggerMessage(5, LogLevel.Warning, "Waiting for queue work failed; retrying")]
    public static partial void WaitFailed(ILogger logger, Exception exception);

    [LoggerMessage(6, LogLevel.Error, "Cancellation handler failed for task {TaskId}")]
    public static partial void CancelHandlerFailed(ILogger logger, Exception exception, Guid taskId);

    [LoggerMessage(7, LogLevel.Warning, "Ignored a malformed message on {Channel}")]
    public static partial void MalformedMessage(ILogger logger, string channel);

    [LoggerMessage(8, LogLevel.Warning, "Redis maxmemory-policy is {Policy}, not noeviction: under memory pressure Redis would silently drop queued tasks. Set maxmemory-policy noeviction")]
    public static partial void EvictingPolicy(ILogger logger, string policy);

    [LoggerMessage(10, LogLevel.Information, "Started redis-server (pid {Pid}) at {Address} with data in {DataDirectory}")]
    public static partial void RedisStarted(ILogger logger, int pid, string address, string dataDirectory);

    [LoggerMessage(11, LogLevel.Warning, "Stopping redis-server (pid {Pid}) left running by a previous run")]
    public static partial void OrphanStopped(ILogger logger, int pid);

    [LoggerMessage(12, LogLevel.Information, "Stopped redis-server (pid {Pid})")]
    public static partial void RedisStopped(ILogger logger, int pid);

    [LoggerMessage(13, LogLevel.Warning, "redis-server (pid {Pid}) did not shut down in time; killed it")]
    public static partial void RedisKilled(ILogger logger, int pid);

    [LoggerMessage(14, LogLevel.Error, "redis-server (pid {Pid}) died with exit code {ExitCode}; starting it again on the same port and data. Its log:\n{LogTail}")]
    public static partial void RedisDied(ILogger logger, int pid, int exitCode, string logTail);

    [LoggerMessage(15, LogLevel.Warning, "redis-server did not start again ({Reason}); next try in {Delay}")]
    public static partial void RedisRestartFailed(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(16, LogLevel.Warning, "redis-server started again (pid {Pid}) at {Address}; the clients reconnect on their own")]
    public static partial void RedisRestarted(ILogger logger, int pid, string address);
}
