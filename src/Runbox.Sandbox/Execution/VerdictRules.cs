using Runbox.Core.Execution;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// Turns what the service saw and what the kernel counted into a verdict. Counters come first: the exit
/// code alone cannot tell an OOM kill (137, or 0 when a child was the victim) from a SIGKILL by the timer.
/// </summary>
internal static class VerdictRules
{
    public static Verdict Decide(StopReason stop, long oomKills, TimeSpan cpuTime, TimeSpan cpuLimit, int exitCode, string? signal)
    {
        if (stop == StopReason.Cancelled)
        {
            return Verdict.Cancelled;
        }
        if (oomKills > 0)
        {
            return Verdict.MemoryLimit;
        }
        if (stop == StopReason.OutputLimit)
        {
            return Verdict.OutputLimit;
        }
        if (stop is StopReason.WallTime or StopReason.CpuTime || cpuTime > cpuLimit)
        {
            return Verdict.TimeLimit;
        }
        return exitCode != 0 || signal is not null ? Verdict.RuntimeError : Verdict.Ok;
    }
}
