using Runbox.Core.Execution;
using Runbox.Core.Tasks;

namespace Runbox.Core.Seams;

/// <summary>
/// The system of record: tasks, every transition, every attempt's result, artifacts.
/// Every status change is checked against <see cref="TaskStateMachine"/> and is conditional on the
/// expected status and the writer's fence, so a stale or racing writer changes nothing.
/// </summary>
public interface ITaskStore
{
    /// <summary>
    /// Creates a pending task and records its first transition (null → pending, reason "submitted").
    /// With an idempotency key already used by the same user, returns that user's first task and
    /// <c>Created = false</c> instead.
    /// </summary>
    Task<CreateTaskResult> CreateAsync(NewTask task, CancellationToken cancellationToken);

    Task<TaskRecord?> GetAsync(Guid id, CancellationToken cancellationToken);

    /// <summary>
    /// Tasks newest first, filtered by the query; the cursor is opaque to callers. A listing carries
    /// each task's latest result as a preview: its stdout, stderr and compiler output are cut to their
    /// first <see cref="TaskPage.PreviewBytes"/> UTF-8 bytes (on a character boundary), and everything
    /// else is whole. The truncation flags keep their meaning (the program's output hit its limit), so
    /// they do not say whether a preview was cut; <see cref="GetAsync"/> returns the whole result.
    /// So a page stays small, and a store can list from previews it keeps instead of reading the outputs.
    /// </summary>
    Task<TaskPage> ListAsync(TaskQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Applies the steps in order, all or nothing, in one transaction. Each step must be allowed by
    /// the state machine, start from the status the previous step left, and carry a fence no lower
    /// than the stored one. A refused step changes nothing and is reported as a conflict.
    /// </summary>
    Task<TransitionResult> TransitionAsync(IReadOnlyList<TransitionRequest> steps, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="TransitionAsync"/> that reads nothing back: on success the result carries the status the task
    /// ended in and no <see cref="TransitionResult.Task"/>. For writers that need no view of the task (a worker
    /// recording its result, the reaper), which spares the reads of the task, its transitions and its artifacts.
    /// </summary>
    Task<TransitionResult> CommitAsync(IReadOnlyList<TransitionRequest> steps, CancellationToken cancellationToken);

    /// <summary>The bytes of an artifact of the task's latest result, or null.</summary>
    Task<byte[]?> GetArtifactAsync(Guid id, string name, CancellationToken cancellationToken);

    /// <summary>
    /// Tasks in <paramref name="status"/> in submission order after <paramref name="afterId"/>, for the
    /// reconciler: each with its transitions but without its result (<see cref="TaskRecord.Result"/> is
    /// null even for a task retried after a finished attempt), which the reconciler does not need and
    /// which could hold megabytes of output and artifacts per task. <see cref="GetAsync"/> has it.
    /// </summary>
    Task<IReadOnlyList<TaskRecord>> ListByStatusAsync(TaskStatus status, int limit, Guid? afterId, CancellationToken cancellationToken);

    /// <summary>Deletes settled tasks (completed, cancelled, failed, timeout: never pending or running) that finished before the cutoff; returns how many.</summary>
    Task<int> DeleteFinishedBeforeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken);
}

public sealed record NewTask(TaskSpec Spec, string? IdempotencyKey = null);

public sealed record CreateTaskResult(TaskRecord Task, bool Created);

public sealed record TaskQuery
{
    /// <summary>Null lists every user's tasks (admins and the dead-letter view).</summary>
    public string? User { get; init; }
    public TaskStatus? Status { get; init; }
    public bool? DeadLettered { get; init; }
    public int Limit { get; init; } = 50;
    public string? Cursor { get; init; }
}

public sealed record TaskPage(IReadOnlyList<TaskRecord> Items, string? NextCursor)
{
    /// <summary>The most UTF-8 bytes of each output a listed result carries.</summary>
    public const int PreviewBytes = 1024;
}

/// <summary>One status change. A null <see cref="Fence"/> is a user action (cancel, retry) that no attempt owns.</summary>
public sealed record TransitionRequest(Guid TaskId, TaskStatus From, TaskStatus To, string Reason)
{
    /// <summary>
    /// The writer's fence. Accepted when the stored fence is not higher; the stored fence then becomes this one.
    /// Moving pending → running requires a fence strictly higher than the stored one (a new claim).
    /// </summary>
    public long? Fence { get; init; }

    public string? WorkerId { get; init; }

    /// <summary>The finished attempt's result, kept with the attempt and shown as the task's latest result.</summary>
    public ExecutionResult? Result { get; init; }

    /// <summary>For a move to pending: when the next attempt may start.</summary>
    public DateTimeOffset? NextAttemptAt { get; init; }

    public bool? DeadLettered { get; init; }

    /// <summary>A dead-letter requeue grants more attempts by raising the maximum.</summary>
    public int? MaxAttempts { get; init; }
}

public enum TransitionConflict
{
    NotFound,
    /// <summary>The state machine forbids the change.</summary>
    InvalidTransition,
    /// <summary>The task is not in the expected status any more (someone else moved it).</summary>
    StatusMismatch,
    /// <summary>The writer's fence is older than the stored one: a zombie write.</summary>
    StaleFence,
}

public sealed record TransitionResult(TaskRecord? Task, TransitionConflict? Conflict, TaskStatus? ActualStatus = null)
{
    public bool Succeeded => Conflict is null;

    public static TransitionResult Ok(TaskRecord task) => new(task, null, task.Status);

    public static TransitionResult Committed(TaskStatus status) => new(null, null, status);

    public static TransitionResult Refused(TransitionConflict conflict, TaskStatus? actual) => new(null, conflict, actual);
}
