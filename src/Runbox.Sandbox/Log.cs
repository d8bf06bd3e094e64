using Microsoft.Extensions.Logging;

namespace Runbox.Sandbox;

/// <summary>Every log line of the sandbox. User source and stdin are never logged.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Sandbox uses {Runtime} ({Path}, {Version}): {Reason}")]
    public static partial void RuntimeSelected(ILogger logger, string runtime, string path, string version, string reason);

    [LoggerMessage(2, LogLevel.Warning, "Sandbox cannot use {Runtime}: {Reason}")]
    public static partial void RuntimeRejected(ILogger logger, string runtime, string reason);

    [LoggerMessage(3, LogLevel.Information, "Seccomp profile precompiled by crun once: {Bytes} bytes of BPF passed to every run")]
    public static partial void SeccompPrecompiled(ILogger logger, int bytes);

    [LoggerMessage(12, LogLevel.Warning, "{Runtime} left no compiled seccomp filter: the profile is compiled on every run (slower)")]
    public static partial void SeccompNotPrecompiled(ILogger logger, string runtime);

    [LoggerMessage(4, LogLevel.Information, "Sandbox state in {StateDirectory}, {Cgroups}, container prefix {Prefix}")]
    public static partial void Started(ILogger logger, string stateDirectory, string cgroups, string prefix);

    [LoggerMessage(5, LogLevel.Warning, "Removed a leftover of an earlier process: {What} {Name}")]
    public static partial void LeftoverRemoved(ILogger logger, string what, string name);

    [LoggerMessage(6, LogLevel.Information, "Language {Language} offered: {Version}")]
    public static partial void LanguageOffered(ILogger logger, string language, string version);

    [LoggerMessage(7, LogLevel.Information, "Language {Language} not offered: {Reason}")]
    public static partial void LanguageMissing(ILogger logger, string language, string reason);

    [LoggerMessage(8, LogLevel.Warning, "{Runtime} {Command} {ContainerId} failed with exit code {ExitCode}: {Error}")]
    public static partial void RuntimeCommandFailed(ILogger logger, string runtime, string command, string containerId, int exitCode, string error);

    [LoggerMessage(11, LogLevel.Debug, "{Runtime} kill {Signal} {ContainerId} failed (it had already stopped?): {Error}")]
    public static partial void KillFailed(ILogger logger, string runtime, string signal, string containerId, string error);

    [LoggerMessage(9, LogLevel.Debug, "Run {RunId} ({Language}) finished: {Verdict} in {WallTimeMs} ms")]
    public static partial void RunFinished(ILogger logger, string runId, string language, string verdict, long wallTimeMs);

    [LoggerMessage(10, LogLevel.Error, "Cleanup of run {RunId} failed")]
    public static partial void CleanupFailed(ILogger logger, string runId, Exception exception);

    [LoggerMessage(14, LogLevel.Information, "Runs get host uids {FirstUid}-{LastUid}, one each; socket buffers: {SocketMemory}")]
    public static partial void Isolation(ILogger logger, long firstUid, long lastUid, string socketMemory);

    [LoggerMessage(13, LogLevel.Warning, "{Runtime} binary could not be mounted read-only ({Error}); it copies itself on every call instead, which costs CPU per container")]
    public static partial void RuntimeBinaryNotMounted(ILogger logger, string runtime, string error);
}
