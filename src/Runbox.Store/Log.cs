using Microsoft.Extensions.Logging;
using Runbox.Core.Seams;

namespace Runbox.Store;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Store schema migrated to version {Version} ({Store})")]
    public static partial void MigrationApplied(ILogger logger, int version, string store);

    [LoggerMessage(2, LogLevel.Warning, "SQLite stayed busy past the busy timeout; retrying the transaction (try {Try})")]
    public static partial void SqliteBusyRetry(ILogger logger, int @try, Exception exception);

    [LoggerMessage(3, LogLevel.Warning, "SQLite kept journal mode {Mode} instead of WAL; concurrent readers will block writers")]
    public static partial void SqliteNotWal(ILogger logger, string mode);

    [LoggerMessage(4, LogLevel.Debug, "Transition of task {TaskId} refused: {Conflict}")]
    public static partial void TransitionRefused(ILogger logger, Guid taskId, TransitionConflict conflict);

    [LoggerMessage(5, LogLevel.Warning, "Task {TaskId} attempt {Attempt}: {Dropped} artifacts dropped by the store's bounds")]
    public static partial void ArtifactsDropped(ILogger logger, Guid taskId, int attempt, int dropped);
}
