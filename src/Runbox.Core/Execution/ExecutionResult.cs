namespace Runbox.Core.Execution;

/// <summary>
/// The outcome of one attempt. What the user's code did (exit code, timeout, OOM, truncated
/// output) is data here, never an exception.
/// </summary>
public sealed record ExecutionResult
{
    public required Verdict Verdict { get; init; }
    public int? ExitCode { get; init; }

    /// <summary>Signal name such as <c>SIGKILL</c> when the program died of a signal.</summary>
    public string? Signal { get; init; }

    public string Stdout { get; init; } = "";
    public string Stderr { get; init; } = "";
    public bool StdoutTruncated { get; init; }
    public bool StderrTruncated { get; init; }
    public TimeSpan WallTime { get; init; }
    public TimeSpan CpuTime { get; init; }
    public long MemoryPeakBytes { get; init; }

    /// <summary>The compile step's result for compiled languages, else null.</summary>
    public CompileResult? Compile { get; init; }

    public IReadOnlyList<Artifact> Artifacts { get; init; } = [];

    /// <summary>Why the attempt failed when the cause is not the program itself (infrastructure, lost lease).</summary>
    public string? Error { get; init; }

    public static ExecutionResult InternalError(string error) => new() { Verdict = Verdict.InternalError, Error = error };
}

public sealed record CompileResult
{
    public required bool Succeeded { get; init; }
    public int? ExitCode { get; init; }
    public string Output { get; init; } = "";
    public bool OutputTruncated { get; init; }
    public TimeSpan WallTime { get; init; }
    public TimeSpan CpuTime { get; init; }
    public long MemoryPeakBytes { get; init; }
}

/// <summary>A file the program wrote under /work/out.</summary>
public sealed record Artifact(string Name, byte[] Content)
{
    public long SizeBytes => Content.LongLength;
}
