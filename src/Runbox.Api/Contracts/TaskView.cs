using System.ComponentModel;
using Runbox.Core.Execution;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Api.Contracts;

// The wire shapes of the HTTP contract (ARCHITECTURE.md). Property names become snake_case.

public sealed record TaskView(
    Guid Id,
    string Status,
    string User,
    string Language,
    int Priority,
    int Attempt,
    int MaxAttempts,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    DateTimeOffset? NextAttemptAt,
    bool DeadLettered,
    IReadOnlyDictionary<string, string> Labels,
    ResultView? Result,
    IReadOnlyList<TransitionView> Transitions)
{
    /// <summary>The view of a task read or written by itself: its result is whole.</summary>
    public static TaskView From(TaskRecord task) => Create(task, preview: false);

    /// <summary>The view of a listed task: the store lists results as previews (<see cref="ITaskStore.ListAsync"/>).</summary>
    public static TaskView FromListing(TaskRecord task) => Create(task, preview: true);

    private static TaskView Create(TaskRecord task, bool preview) => new(
        task.Id,
        task.Status.ToWire(),
        task.User,
        task.Spec.Language,
        task.Spec.Priority,
        task.Attempt,
        task.MaxAttempts,
        task.CreatedAt,
        task.StartedAt,
        task.FinishedAt,
        task.NextAttemptAt,
        task.DeadLettered,
        task.Spec.Labels,
        task.Result is null ? null : ResultView.From(task.Id, task.Result, preview),
        task.Transitions.Select(TransitionView.Of).ToList());
}

public sealed record ResultView(
    string Verdict,
    int? ExitCode,
    string? Signal,
    string Stdout,
    string Stderr,
    bool StdoutTruncated,
    bool StderrTruncated,
    long WallTimeMs,
    long CpuTimeMs,
    long MemoryPeakKb,
    CompileView? Compile,
    IReadOnlyList<ArtifactView> Artifacts,
    string? Error,
    [property: Description(ResultView.PreviewDescription)] bool Preview)
{
    // 1024 is TaskPage.PreviewBytes, written out because an attribute's argument must be a constant string.
    internal const string PreviewDescription =
        "True in a listing (GET /v1/tasks, GET /v1/dead-letters): stdout, stderr and compile.output then hold "
        + "at most their first 1024 UTF-8 bytes, cut on a character boundary, and GET /v1/tasks/{id} has them whole. "
        + "False where the result is whole. stdout_truncated, stderr_truncated and compile.output_truncated say "
        + "only whether the program's output hit its limit, in both.";

    public static ResultView From(Guid taskId, ExecutionResult result, bool preview) => new(
        result.Verdict.ToWire(),
        result.ExitCode,
        result.Signal,
        result.Stdout,
        result.Stderr,
        result.StdoutTruncated,
        result.StderrTruncated,
        (long)result.WallTime.TotalMilliseconds,
        (long)result.CpuTime.TotalMilliseconds,
        result.MemoryPeakBytes / 1024,
        result.Compile is null ? null : CompileView.From(result.Compile),
        result.Artifacts.Select(a => new ArtifactView(a.Name, a.SizeBytes, $"/v1/tasks/{taskId}/artifacts/{Uri.EscapeDataString(a.Name)}")).ToList(),
        result.Error,
        preview);
}

public sealed record CompileView(bool Succeeded, int? ExitCode, string Output, bool OutputTruncated, long WallTimeMs, long CpuTimeMs, long MemoryPeakKb)
{
    public static CompileView From(CompileResult compile) => new(
        compile.Succeeded,
        compile.ExitCode,
        compile.Output,
        compile.OutputTruncated,
        (long)compile.WallTime.TotalMilliseconds,
        (long)compile.CpuTime.TotalMilliseconds,
        compile.MemoryPeakBytes / 1024);
}

public sealed record ArtifactView(string Name, long SizeBytes, string Url);

public sealed record TransitionView(string? From, string To, DateTimeOffset At, int Attempt, string Reason, string? Worker)
{
    public static TransitionView Of(TaskTransition transition) =>
        new(transition.From?.ToWire(), transition.To.ToWire(), transition.At, transition.Attempt, transition.Reason, transition.WorkerId);
}

public sealed record PageView<T>(IReadOnlyList<T> Items, string? NextCursor);

public sealed record LanguageView(string Id, string Name, string Version, string SourceFile, bool Compiled);

public sealed record QueueView(
    IReadOnlyDictionary<string, long> ReadyByPriority,
    long Pending,
    long Delayed,
    long Running,
    long DeadLettered,
    long DeadLetterTrimmed,
    long? OldestPendingAgeMs);

/// <summary>A live worker process; <c>languages</c> are the ids its sandbox offers.</summary>
public sealed record WorkerView(string Id, string Host, int Slots, int Busy, DateTimeOffset LastHeartbeat, string Version, IReadOnlyList<string> Languages);

public sealed record StatusEventView(string Status, int Attempt);

public sealed record OutputEventView(string Stream, string Data, int Attempt);
