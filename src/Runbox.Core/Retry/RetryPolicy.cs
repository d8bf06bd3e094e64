namespace Runbox.Core.Retry;

/// <summary>
/// When a failed or timed-out attempt goes back to pending, and how long it waits first:
/// exponential backoff (base × factor^(attempt-1), capped) with full-range jitter of ±<see cref="Jitter"/>.
/// </summary>
public sealed record RetryPolicy
{
    public const int DefaultMaxAttempts = 3;
    public const int MaxAllowedAttempts = 20;

    public static readonly TimeSpan DefaultBase = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan DefaultCap = TimeSpan.FromMinutes(5);

    public static RetryPolicy Default { get; } = new();

    public int MaxAttempts { get; init; } = DefaultMaxAttempts;

    public IReadOnlySet<FailureKind> On { get; init; } = new HashSet<FailureKind> { FailureKind.Infrastructure, FailureKind.Timeout };

    public TimeSpan Base { get; init; } = DefaultBase;
    public double Factor { get; init; } = 2.0;
    public TimeSpan Cap { get; init; } = DefaultCap;

    /// <summary>Fraction of the delay that is randomised, 0 (none) to 1 (anywhere from 0 to 2×).</summary>
    public double Jitter { get; init; } = 0.2;

    /// <summary>Whether an attempt that failed this way, as attempt number <paramref name="attempt"/> (1-based), is tried again.</summary>
    public bool ShouldRetry(FailureKind kind, int attempt, int maxAttempts) =>
        kind != FailureKind.CompileError && On.Contains(kind) && attempt < maxAttempts;

    public bool ShouldRetry(FailureKind kind, int attempt) => ShouldRetry(kind, attempt, MaxAttempts);

    /// <summary>The wait before attempt <paramref name="attempt"/> + 1. <paramref name="random"/> in [0, 1).</summary>
    public TimeSpan Backoff(int attempt, double random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var exponent = Math.Min(attempt - 1, 62);
        var raw = Base.TotalMilliseconds * Math.Pow(Factor, exponent);
        var capped = Math.Min(raw, Cap.TotalMilliseconds);
        var jittered = capped * (1 - Jitter + (2 * Jitter * random));
        return TimeSpan.FromMilliseconds(Math.Max(0, Math.Min(jittered, Cap.TotalMilliseconds)));
    }
}
