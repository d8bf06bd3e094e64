namespace Runbox.Core.Seams;

/// <summary>
/// Live events of one task (status changes and output chunks), shared across processes so an API
/// process can stream what a worker on another machine is doing. Bounded and short-lived: the
/// store, not this, is the record.
/// </summary>
public interface ITaskEvents
{
    Task PublishAsync(Guid taskId, TaskEvent taskEvent, CancellationToken cancellationToken);

    /// <summary>Events after <paramref name="afterId"/> (null = from the start), waiting up to <paramref name="wait"/> for the first.</summary>
    Task<IReadOnlyList<TaskEvent>> ReadAsync(Guid taskId, string? afterId, TimeSpan wait, CancellationToken cancellationToken);
}

/// <summary><see cref="Kind"/> is "status" (Data = the new status) or "output" (Stream = stdout|stderr, Data = text).</summary>
public sealed record TaskEvent(string Kind, string Data)
{
    public string? Id { get; init; }
    public string? Stream { get; init; }
    public int Attempt { get; init; }
}
