using Runbox.Core.Execution;

namespace Runbox.Core.Retry;

/// <summary>Why an attempt did not complete; a retry policy lists which kinds it retries.</summary>
public enum FailureKind
{
    Infrastructure,
    Timeout,
    RuntimeError,
    MemoryLimit,
    OutputLimit,
    CompileError,
}

public static class FailureKindNames
{
    public static string ToWire(this FailureKind kind) => kind switch
    {
        FailureKind.Infrastructure => "infrastructure",
        FailureKind.Timeout => "timeout",
        FailureKind.RuntimeError => "runtime_error",
        FailureKind.MemoryLimit => "memory_limit",
        FailureKind.OutputLimit => "output_limit",
        FailureKind.CompileError => "compile_error",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static bool TryParse(string? text, out FailureKind kind) => WireNames.TryParse(text, ToWire, out kind);

    /// <summary>The failure kind of a verdict, or null when the verdict is not a failure.</summary>
    public static FailureKind? FromVerdict(Verdict verdict) => verdict switch
    {
        Verdict.CompileError => FailureKind.CompileError,
        Verdict.RuntimeError => FailureKind.RuntimeError,
        Verdict.TimeLimit => FailureKind.Timeout,
        Verdict.MemoryLimit => FailureKind.MemoryLimit,
        Verdict.OutputLimit => FailureKind.OutputLimit,
        Verdict.InternalError => FailureKind.Infrastructure,
        _ => null,
    };
}
