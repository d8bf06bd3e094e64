namespace Runbox.Core.Seams;

/// <summary>
/// Live events of one task (status changes and output chunks), shared across processes so an API
/// process can stream what a worker on another machine is doing. Bounded and short-lived: the
/// store, not this, is the record.
/// </summary>
public interface ITaskEvents
{
    /// <summary>Appends an event. Status events follow a store change, which is fenced already.</summary>
    Task PublishAsync(Guid taskId, TaskEvent taskEvent, CancellationToken cancellationToken);

    /// <summary>
    /// Appends a running attempt's output only while the queue still has the task running under
    /// <paramref name="fence"/>; false, and nothing appended, once it does not (the lease was lost and
    /// the reaper or a newer attempt owns the task). A stale attempt's output never reaches a reader.
    /// </summary>
    Task<bool> PublishOutputAsync(Guid taskId, long fence, TaskEvent taskEvent, CancellationToken cancellationToken);

    /// <summary>Events after <paramref name="afterId"/> (null = from the start), waiting up to <paramref name="wait"/> for the first.</summary>
    Task<IReadOnlyList<TaskEvent>> ReadAsync(Guid taskId, string? afterId, TimeSpan wait, CancellationToken cancellationToken);

    /// <summary>The id of the task's newest event, null when it has none: where a reader that wants only what comes next starts.</summary>
    Task<string?> LastIdAsync(Guid taskId, CancellationToken cancellationToken);
}

/// <summary><see cref="Kind"/> is "status" (Data = the new status) or "output" (Stream = stdout|stderr, Data = text).</summary>
public sealed record TaskEvent(string Kind, string Data)
{
    public string? Id { get; init; }
    public string? Stream { get; init; }
    public int Attempt { get; init; }
}
