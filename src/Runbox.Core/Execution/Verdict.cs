namespace Runbox.Core.Execution;

/// <summary>What happened to the user's program. The wire form is snake_case.</summary>
public enum Verdict
{
    Ok,
    CompileError,
    RuntimeError,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    InternalError,
    Cancelled,
}

public static class VerdictNames
{
    public static string ToWire(this Verdict verdict) => verdict switch
    {
        Verdict.Ok => "ok",
        Verdict.CompileError => "compile_error",
        Verdict.RuntimeError => "runtime_error",
        Verdict.TimeLimit => "time_limit",
        Verdict.MemoryLimit => "memory_limit",
        Verdict.OutputLimit => "output_limit",
        Verdict.InternalError => "internal_error",
        Verdict.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(verdict), verdict, null),
    };

    public static Verdict Parse(string text) =>
        WireNames.TryParse(text, ToWire, out Verdict verdict) ? verdict : throw new FormatException($"Unknown verdict '{text}'.");
}
