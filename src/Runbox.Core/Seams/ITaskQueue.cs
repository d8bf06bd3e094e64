using Runbox.Core.Tasks;

namespace Runbox.Core.Seams;

/// <summary>
/// The dispatch plane: who runs what next and who holds which lease. Strict priority (9 first),
/// FIFO within a priority, across users; a user at their concurrency limit never blocks others.
/// Every write by a worker carries the lease's fence; a stale fence changes nothing.
/// The store stays the system of record: everything here can be rebuilt from it.
/// </summary>
public interface ITaskQueue
{
    /// <summary>Makes a pending task claimable (now, or at <see cref="QueueItem.RunAt"/>). Idempotent: a task already queued or running is left as it is.</summary>
    Task EnqueueAsync(QueueItem item, CancellationToken cancellationToken);

    /// <summary>
    /// Enqueues several tasks at once, each exactly as <see cref="EnqueueAsync"/> would (the reconciler,
    /// bulk submits). Implementations may do it in one round trip; the default enqueues one by one.
    /// </summary>
    async Task EnqueueManyAsync(IReadOnlyList<QueueItem> items, CancellationToken cancellationToken)
    {
        foreach (var item in items)
        {
            await EnqueueAsync(item, cancellationToken);
        }
    }

    /// <summary>Claims up to <paramref name="max"/> tasks at once without blocking; each claim bumps the task's fence.</summary>
    Task<IReadOnlyList<Lease>> ClaimAsync(string workerId, int max, CancellationToken cancellationToken);

    /// <summary>Blocks until work may be available or <paramref name="maxWait"/> passes (no polling).</summary>
    Task WaitForWorkAsync(TimeSpan maxWait, CancellationToken cancellationToken);

    /// <summary>Extends the leases whose fence still matches and reports on each.</summary>
    Task<IReadOnlyList<LeaseStatus>> HeartbeatAsync(string workerId, IReadOnlyList<Lease> leases, CancellationToken cancellationToken);

    /// <summary>Ends an attempt with an outcome the worker already decided. Returns false (and changes nothing) for a stale fence.</summary>
    Task<bool> FinishAsync(Lease lease, AttemptOutcome outcome, CancellationToken cancellationToken);

    /// <summary>Removes a pending task at once, or flags a running one and nudges its worker.</summary>
    Task<CancelResult> CancelAsync(Guid taskId, CancellationToken cancellationToken);

    /// <summary>
    /// Takes over up to <paramref name="max"/> attempts whose lease expired: bumps each fence (the lost holder's
    /// writes are stale from then on), counts the stall and leases the attempt to the caller under the new fence
    /// for the queue's lease duration. The caller decides what follows and ends the attempt with
    /// <see cref="FinishAsync"/> under that fence; one that fails to lets the lease expire, and the attempt is
    /// taken over again (without counting another stall).
    /// </summary>
    Task<IReadOnlyList<ReapedTask>> ReapAsync(int max, CancellationToken cancellationToken);

    /// <summary>Takes a dead-lettered task out of the dead letters and queues it again with a fresh attempt budget.</summary>
    Task<bool> RequeueDeadLetterAsync(QueueItem item, CancellationToken cancellationToken);

    /// <summary>Forgets a task entirely (the store finished it; nothing of it is left to dispatch).</summary>
    Task RemoveAsync(Guid taskId, CancellationToken cancellationToken);

    /// <summary>What the queue knows of a task, or null when it holds nothing for it.</summary>
    Task<QueuedTaskState?> GetStateAsync(Guid taskId, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the queue hold one task as the store does (the reconciler's repair), after the queue lost some
    /// or all of its data. A task the store has pending is queued afresh when the queue has no live record
    /// of it, and put back in its place (ready, delayed, among the eligible) when its record survived but
    /// that place did not. A running record gets its lease back when it lost it, so the reaper sees it.
    /// <paramref name="running"/> says the store has the task running (else pending).
    /// </summary>
    Task<QueueRestore> RestoreAsync(QueueItem item, bool running, CancellationToken cancellationToken);

    /// <summary>
    /// Recounts each user's running tasks from the queue's running records and corrects the counts the
    /// per-user limits are checked against (the reconciler's repair: a record lost while its task ran
    /// would otherwise hold its user's count up for good). Returns how many users' counts were corrected.
    /// </summary>
    Task<int> RecountRunningAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Sets a user's concurrency limit (null: back to the queue's default). Returns whether that changed
    /// anything: false when the queue already had exactly this limit.
    /// </summary>
    Task<bool> SetUserLimitAsync(string user, int? limit, CancellationToken cancellationToken);

    Task<QueueStats> GetStatsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Cancel requests for running tasks as they are made (the fast path; heartbeats are the sure one).
    /// Returns once subscribed; <paramref name="onCancel"/> is called until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    Task SubscribeCancellationsAsync(Func<Guid, Task> onCancel, CancellationToken cancellationToken);

    Task RegisterWorkerAsync(WorkerInfo worker, CancellationToken cancellationToken);

    /// <summary>
    /// Takes or renews the lead of the cluster's maintenance (reaper, reconciler, retention) for <paramref name="term"/>;
    /// true while <paramref name="candidate"/> holds it. One process holds it at a time; when it stops renewing,
    /// another takes it once the term has run out.
    /// </summary>
    Task<bool> TryLeadMaintenanceAsync(string candidate, TimeSpan term, CancellationToken cancellationToken);

    /// <summary>Gives the lead up at once, if <paramref name="candidate"/> holds it (a clean stop).</summary>
    Task ReleaseMaintenanceAsync(string candidate, CancellationToken cancellationToken);

    Task<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken);
}

/// <summary>What the queue needs to dispatch one task; <see cref="Fence"/> is a floor (the store's fence) so a rebuilt queue never reissues an old fence.</summary>
public sealed record QueueItem(Guid TaskId, string User, int Priority)
{
    public long Fence { get; init; }
    /// <summary>Attempts started so far.</summary>
    public int Attempt { get; init; }
    public int MaxAttempts { get; init; } = 3;
    /// <summary>How long an attempt may hold its lease in all (compile + run + grace); past it the reaper times the task out.</summary>
    public TimeSpan RunDeadline { get; init; } = TimeSpan.FromMinutes(2);
    public DateTimeOffset? RunAt { get; init; }
}

public sealed record Lease(Guid TaskId, string User, long Fence, int Attempt, DateTimeOffset LeaseUntil);

public enum LeaseState
{
    Ok,
    /// <summary>The fence moved on or the task is no longer running: stop and write nothing.</summary>
    Lost,
    CancelRequested,
    PastDeadline,
}

public sealed record LeaseStatus(Guid TaskId, LeaseState State);

public enum OutcomeKind
{
    Completed,
    Cancelled,
    /// <summary>Failed or timed out, with attempts left: back to pending at <see cref="AttemptOutcome.RetryAt"/>.</summary>
    Retry,
    /// <summary>Failed or timed out for good: dead-lettered.</summary>
    DeadLetter,
    /// <summary>Failed or timed out and not retryable by policy (e.g. a compile error): finished, not dead-lettered.</summary>
    Failed,
}

public sealed record AttemptOutcome(OutcomeKind Kind, TaskStatus Status)
{
    public DateTimeOffset? RetryAt { get; init; }
    public string? Error { get; init; }
}

public enum CancelResult
{
    NotFound,
    RemovedPending,
    FlaggedRunning,
    AlreadyFinished,
}

/// <summary>
/// An attempt the reaper took over (<see cref="ITaskQueue.ReapAsync"/>): its new fence, how many times the task has
/// lost its lease so far, whether a cancel was requested and whether it ran past its deadline.
/// </summary>
public sealed record ReapedTask(Guid TaskId, string User, long NewFence, int Attempt, int Stalls, bool CancelRequested, bool PastDeadline)
{
    /// <summary>The lease the taker-over ends the attempt with.</summary>
    public Lease Lease => new(TaskId, User, NewFence, Attempt, DateTimeOffset.MinValue);
}

public enum QueueRestore
{
    /// <summary>The queue held the task as it should.</summary>
    Intact,
    Restored,
    /// <summary>The store has the task running and the queue has no record of it: that attempt is lost.</summary>
    Lost,
}

public sealed record QueuedTaskState(Guid TaskId, string State, long Fence, int Attempt, bool Dead);

public sealed record QueueStats
{
    public IReadOnlyDictionary<int, long> ReadyByPriority { get; init; } = new Dictionary<int, long>();
    public long Delayed { get; init; }
    public long Running { get; init; }
    public long DeadLettered { get; init; }
    public long DeadLetterTrimmed { get; init; }
    public TimeSpan? OldestPendingAge { get; init; }
}

/// <summary>A worker process as it registers itself (every heartbeat); <see cref="Languages"/> are what its sandbox offers.</summary>
public sealed record WorkerInfo(string Id, string Host, int Slots, int Busy, DateTimeOffset LastHeartbeat, string Version)
{
    public IReadOnlyList<LanguageInfo> Languages { get; init; } = [];
}
