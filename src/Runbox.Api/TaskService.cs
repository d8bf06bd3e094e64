using Runbox.Api.Auth;
using Runbox.Core.Limits;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Core.Validation;
using Runbox.Lifecycle;

namespace Runbox.Api;

public enum CommandStatus
{
    Ok,
    NotFound,
    Conflict,
}

public sealed record CommandResult(CommandStatus Status, TaskRecord? Task, string? Detail = null)
{
    public static CommandResult NotFound() => new(CommandStatus.NotFound, null);

    public static CommandResult Conflict(TaskRecord task, string detail) => new(CommandStatus.Conflict, task, detail);

    public static CommandResult Ok(TaskRecord task) => new(CommandStatus.Ok, task);
}

/// <summary>
/// What the API does to tasks: it checks who may do what and validates, and every state change goes
/// through the lifecycle engine (store first, then the queue, so nothing accepted is lost).
/// </summary>
public sealed class TaskService(
    ITaskStore store,
    ITaskEvents events,
    TaskLifecycle lifecycle,
    ILanguageDirectory languages,
    LimitPolicy limits,
    TimeProvider time)
{
    private static readonly TimeSpan CancelSettle = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan EventsDownPollInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a wait follows the live events without reading the store (see <see cref="WaitForSettledAsync"/>).</summary>
    private static readonly TimeSpan StoreRecheckInterval = TimeSpan.FromSeconds(5);

    public sealed record SubmitResult(TaskRecord? Task, bool Created, IReadOnlyDictionary<string, string[]>? Errors);

    public async Task<SubmitResult> SubmitAsync(Caller caller, TaskSubmission submission, string? idempotencyKey, CancellationToken cancellationToken)
    {
        var offered = await languages.GetAsync(cancellationToken);
        var validation = new TaskSubmissionValidator(limits, offered).Validate(submission, caller.User);
        if (!validation.IsValid)
        {
            return new SubmitResult(null, false, validation.Errors);
        }

        var created = await lifecycle.SubmitAsync(new NewTask(validation.Spec!, idempotencyKey), cancellationToken);
        return new SubmitResult(created.Task, created.Created, null);
    }

    /// <summary>The caller's task, or null when it does not exist or belongs to someone else (no leak of which).</summary>
    public async Task<TaskRecord?> GetAsync(Caller caller, Guid id, CancellationToken cancellationToken)
    {
        var task = await store.GetAsync(id, cancellationToken);
        return task is not null && caller.CanSee(task.User) ? task : null;
    }

    public async Task<CommandResult> CancelAsync(Caller caller, Guid id, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, id, cancellationToken);
        if (task is null)
        {
            return CommandResult.NotFound();
        }

        var (outcome, now) = await lifecycle.CancelAsync(task, cancellationToken);
        return outcome switch
        {
            CancelOutcome.Cancelled => CommandResult.Ok(now!),
            // The running attempt's worker (or the reaper) ends it: wait a little to answer with the outcome.
            CancelOutcome.Requested => CommandResult.Ok(await WaitForSettledAsync(id, CancelSettle, cancellationToken) ?? now!),
            _ => CommandResult.Conflict(now!, $"The task is already {now!.Status.ToWire()}."),
        };
    }

    public async Task<CommandResult> RetryAsync(Caller caller, Guid id, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, id, cancellationToken);
        if (task is null)
        {
            return CommandResult.NotFound();
        }
        if (task.Status is not (TaskStatus.Failed or TaskStatus.Timeout))
        {
            return CommandResult.Conflict(task, $"Only failed or timed-out tasks can be retried; this one is {task.Status.ToWire()}.");
        }
        return await RequeueAsync(task, RequeueKind.Retry, cancellationToken);
    }

    public async Task<CommandResult> RequeueDeadLetterAsync(Caller caller, Guid id, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, id, cancellationToken);
        if (task is null)
        {
            return CommandResult.NotFound();
        }
        if (!task.DeadLettered || task.Status is not (TaskStatus.Failed or TaskStatus.Timeout))
        {
            return CommandResult.Conflict(task, "The task is not in the dead letters.");
        }
        return await RequeueAsync(task, RequeueKind.DeadLetter, cancellationToken);
    }

    private async Task<CommandResult> RequeueAsync(TaskRecord task, RequeueKind kind, CancellationToken cancellationToken)
    {
        var (requeued, now) = await lifecycle.RequeueAsync(task, kind, cancellationToken);
        return requeued ? CommandResult.Ok(now) : CommandResult.Conflict(now, $"The task changed meanwhile; it is {now.Status.ToWire()}.");
    }

    /// <summary>
    /// Waits until the task is settled for good (completed, cancelled, or failed/timeout with no retry
    /// pending) or the timeout passes; returns the task as it then is. The store has the answer; the live
    /// events say when to ask it: on a status that may be the last, and at least every
    /// <see cref="StoreRecheckInterval"/> (a publisher that died between its store write and its event
    /// never sends one). Reading the store on every event and every quiet second instead cost each waiting
    /// client about one store read a second, most of the store's work with 1,000 waiting. When the events
    /// fail (Redis slow or away) the wait falls back to reading the store, so an accepted submission never
    /// turns into an error.
    /// </summary>
    public async Task<TaskRecord?> WaitForSettledAsync(Guid id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timeoutSource = new CancellationTokenSource(timeout, time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        try
        {
            // Follow from the stream's end as it is now, read before the store: whatever the store does not
            // show yet is published after this point.
            var after = await TryLastEventIdAsync(id, deadline.Token);
            while (true)
            {
                var task = await store.GetAsync(id, deadline.Token);
                if (task is null || IsSettled(task.Status))
                {
                    return task;
                }
                var readAt = time.GetTimestamp();
                while (time.GetElapsedTime(readAt) is var waited && waited < StoreRecheckInterval)
                {
                    // One wait for the rest of the interval: the event's notification ends it. Only a lost
                    // notification (pub/sub keeps none for a connection that dropped) runs it out, and then the
                    // store read ends the wait. Shorter slices cost each waiting request two stream reads a slice.
                    var news = await TryReadEventsAsync(id, after, StoreRecheckInterval - waited, deadline.Token);
                    if (news is null)
                    {
                        break;
                    }
                    if (news.Count > 0)
                    {
                        after = news[^1].Id;
                        if (news.Any(MayBeLast))
                        {
                            break;
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return await store.GetAsync(id, cancellationToken);
        }
    }

    private static bool MayBeLast(TaskEvent taskEvent) =>
        taskEvent.Kind == "status" && TaskStatusNames.TryParse(taskEvent.Data, out var status) && IsSettled(status);

    private async Task<string?> TryLastEventIdAsync(Guid id, CancellationToken cancellationToken)
    {
        try
        {
            return await events.LastIdAsync(id, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // From the start then: an old event read again only costs a store read.
            return null;
        }
    }

    private async Task<IReadOnlyList<TaskEvent>?> TryReadEventsAsync(Guid id, string? after, TimeSpan wait, CancellationToken cancellationToken)
    {
        try
        {
            return await events.ReadAsync(id, after, wait, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // No events to wake us: poll the store at a modest pace instead.
            await Task.Delay(EventsDownPollInterval, cancellationToken);
            return null;
        }
    }

    /// <summary>The store writes failed → pending in the same transaction, so a failed task here is not being retried.</summary>
    public static bool IsSettled(TaskStatus status) => status is TaskStatus.Completed or TaskStatus.Cancelled or TaskStatus.Failed or TaskStatus.Timeout;
}
