using Runbox.Core.Retry;

namespace Runbox.Core.Tests;

public class RetryPolicyTests
{
    private static readonly RetryPolicy NoJitter = new() { Base = TimeSpan.FromSeconds(1), Cap = TimeSpan.FromSeconds(30), Jitter = 0 };

    [Theory]
    [InlineData(1, 1000)]
    [InlineData(2, 2000)]
    [InlineData(3, 4000)]
    [InlineData(5, 16000)]
    [InlineData(6, 30000)]
    [InlineData(60, 30000)]
    public void Backoff_NoJitter_IsExponentialAndCapped(int attempt, double expectedMs)
    {
        Assert.Equal(expectedMs, NoJitter.Backoff(attempt, 0.5).TotalMilliseconds);
    }

    [Fact]
    public void Backoff_Jitter_StaysWithinBand()
    {
        var policy = NoJitter with { Jitter = 0.2 };

        Assert.Equal(1600, policy.Backoff(2, 0.0).TotalMilliseconds, 3);
        Assert.Equal(2400, policy.Backoff(2, 0.999999).TotalMilliseconds, 0);
        Assert.Equal(30000, policy.Backoff(10, 0.999999).TotalMilliseconds);
    }

    [Fact]
    public void ShouldRetry_DefaultPolicy_RetriesInfrastructureAndTimeoutOnly()
    {
        var policy = RetryPolicy.Default;

        Assert.True(policy.ShouldRetry(FailureKind.Infrastructure, 1));
        Assert.True(policy.ShouldRetry(FailureKind.Timeout, 2));
        Assert.False(policy.ShouldRetry(FailureKind.RuntimeError, 1));
        Assert.False(policy.ShouldRetry(FailureKind.Timeout, 3));
    }

    [Fact]
    public void ShouldRetry_CompileError_NeverEvenWhenListed()
    {
        var policy = RetryPolicy.Default with { On = new HashSet<FailureKind> { FailureKind.CompileError } };

        Assert.False(policy.ShouldRetry(FailureKind.CompileError, 1));
    }

    [Fact]
    public void ShouldRetry_RaisedMaxAttempts_AllowsMore()
    {
        Assert.True(RetryPolicy.Default.ShouldRetry(FailureKind.Timeout, 4, maxAttempts: 6));
    }
}
