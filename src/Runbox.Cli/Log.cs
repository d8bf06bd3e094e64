using Microsoft.Extensions.Logging;

namespace Runbox.Cli;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Runbox {Role} on port {Port}{Mode}; store {Store}; redis {Redis}; data {Data}")]
    public static partial void Started(ILogger logger, string role, int port, string mode, string store, string redis, string data);

    [LoggerMessage(2, LogLevel.Information, "Stopped while starting")]
    public static partial void StoppedDuringStartup(ILogger logger);

}
