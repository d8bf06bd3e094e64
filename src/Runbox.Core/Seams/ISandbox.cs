using Runbox.Core.Execution;
using Runbox.Core.Tasks;

namespace Runbox.Core.Seams;

/// <summary>Runs one attempt of a task in an isolated container and reports what happened.</summary>
public interface ISandbox
{
    /// <summary>
    /// Compiles (when the language needs it) and runs the spec under its limits. Output is passed to
    /// <paramref name="output"/> as it arrives. Cancelling the token terminates the run gracefully
    /// (TERM, grace, KILL) and returns a result with verdict <see cref="Verdict.Cancelled"/>.
    /// Only sandbox faults throw; everything the program does is in the result.
    /// </summary>
    Task<ExecutionResult> RunAsync(TaskSpec spec, IOutputSink output, CancellationToken cancellationToken);

    /// <summary>The languages whose toolchains exist on this host.</summary>
    IReadOnlyList<LanguageInfo> Languages { get; }
}

public enum OutputStream
{
    Stdout,
    Stderr,
}

/// <summary>Receives a run's output while it runs (for live views). Must not block for long.</summary>
public interface IOutputSink
{
    ValueTask WriteAsync(OutputStream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken);
}

public sealed class NullOutputSink : IOutputSink
{
    public static NullOutputSink Instance { get; } = new();

    public ValueTask WriteAsync(OutputStream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>A language offered by this host.</summary>
public sealed record LanguageInfo(string Id, string Name, string Version, string SourceFile, bool Compiled);
