using Runbox.Core.Execution;
using Runbox.Sandbox.Execution;

namespace Runbox.Sandbox.Tests;

public class VerdictRulesTests
{
    private static readonly TimeSpan CpuLimit = TimeSpan.FromSeconds(1);

    [Fact]
    public void Decide_CleanExit_IsOk() =>
        Assert.Equal(Verdict.Ok, VerdictRules.Decide(StopReason.None, 0, TimeSpan.FromMilliseconds(10), CpuLimit, 0, null));

    [Fact]
    public void Decide_OomKillOfChildWithExitZero_IsMemoryLimit() =>
        Assert.Equal(Verdict.MemoryLimit, VerdictRules.Decide(StopReason.None, 1, TimeSpan.Zero, CpuLimit, 0, null));

    [Fact]
    public void Decide_OomKillWhileTimerFired_IsMemoryLimit() =>
        Assert.Equal(Verdict.MemoryLimit, VerdictRules.Decide(StopReason.WallTime, 2, TimeSpan.Zero, CpuLimit, 137, "SIGKILL"));

    [Fact]
    public void Decide_OutputCapHit_IsOutputLimit() =>
        Assert.Equal(Verdict.OutputLimit, VerdictRules.Decide(StopReason.OutputLimit, 0, TimeSpan.Zero, CpuLimit, 137, "SIGKILL"));

    [Fact]
    public void Decide_WallTimerStopped_IsTimeLimit() =>
        Assert.Equal(Verdict.TimeLimit, VerdictRules.Decide(StopReason.WallTime, 0, TimeSpan.Zero, CpuLimit, 143, "SIGTERM"));

    [Fact]
    public void Decide_CpuWatchdogStopped_IsTimeLimit() =>
        Assert.Equal(Verdict.TimeLimit, VerdictRules.Decide(StopReason.CpuTime, 0, TimeSpan.Zero, CpuLimit, 137, "SIGKILL"));

    [Fact]
    public void Decide_CpuOverLimitButExitedCleanly_IsTimeLimit() =>
        Assert.Equal(Verdict.TimeLimit, VerdictRules.Decide(StopReason.None, 0, TimeSpan.FromSeconds(1.2), CpuLimit, 0, null));

    [Fact]
    public void Decide_NonZeroExit_IsRuntimeError() =>
        Assert.Equal(Verdict.RuntimeError, VerdictRules.Decide(StopReason.None, 0, TimeSpan.Zero, CpuLimit, 3, null));

    [Fact]
    public void Decide_CancelledEvenIfOutOfMemory_IsCancelled() =>
        Assert.Equal(Verdict.Cancelled, VerdictRules.Decide(StopReason.Cancelled, 1, TimeSpan.Zero, CpuLimit, 137, "SIGKILL"));

    [Theory]
    [InlineData(0, null)]
    [InlineData(3, null)]
    [InlineData(128, null)]
    [InlineData(137, "SIGKILL")]
    [InlineData(139, "SIGSEGV")]
    [InlineData(143, "SIGTERM")]
    [InlineData(159, "SIGSYS")]
    [InlineData(160, null)]
    [InlineData(200, null)]
    public void DescribeExit_RuntimeExitCode_GivesExitCodeAndSignal(int exitCode, string? signal) =>
        Assert.Equal((exitCode, signal), ContainerRunner.DescribeExit(exitCode));
}
