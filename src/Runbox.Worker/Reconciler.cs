using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Execution;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Worker;

/// <summary>
/// Makes the queue agree with the store, the system of record: a pending task the queue lacks (a
/// crash between the store write and the enqueue, or a Redis that lost its data) is enqueued again;
/// a running task the queue no longer knows is closed as a lost attempt and retried; what a partial
/// loss cut off (a record without its place in the queue or its lease, a user's running count left
/// up by runs that no longer exist) is put back. Also applies retention. Safe to run in several
/// processes at once: every queue repair is one idempotent script and every store write is conditional.
/// </summary>
public sealed class Reconciler(
    ITaskQueue queue,
    ITaskStore store,
    ITaskEvents events,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    ILogger<Reconciler> logger) : BackgroundService
{
    private const int PageSize = 200;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ReconcileInterval, time);
        do
        {
            try
            {
                await ReconcileOnceAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                Log.LoopError(logger, exception);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One full pass; returns how many tasks it repaired.</summary>
    public async Task<int> ReconcileOnceAsync(CancellationToken cancellationToken)
    {
        var repaired = 0;
        await foreach (var task in ListAsync(TaskStatus.Pending, cancellationToken))
        {
            if (await queue.RestoreAsync(task.ToQueueItem(options.Value.DeadlineSlack), running: false, cancellationToken) == QueueRestore.Restored)
            {
                Log.Reenqueued(logger, task.Id);
                repaired++;
            }
        }

        await foreach (var task in ListAsync(TaskStatus.Running, cancellationToken))
        {
            var restore = await queue.RestoreAsync(task.ToQueueItem(options.Value.DeadlineSlack), running: true, cancellationToken);
            if (restore == QueueRestore.Restored)
            {
                Log.LeaseRestored(logger, task.Id);
                repaired++;
            }
            if (restore != QueueRestore.Lost)
            {
                continue;
            }
            // One above the stored fence: the lost worker's writes (if it still lives) are refused,
            // and the queue will hand out fences above this one.
            var fence = task.Fence + 1;
            var write = await store.TransitionAsync(
                AttemptDecision.RequeueLost(time.GetUtcNow()).ToTransitions(task.Id, fence, null, "the queue lost this attempt",
                    ExecutionResult.InternalError("the dispatch queue lost the running attempt"), "requeued by the reconciler"),
                cancellationToken);
            if (write.Succeeded)
            {
                Log.RecoveredRunning(logger, task.Id);
                await queue.EnqueueAsync(write.Task!.ToQueueItem(options.Value.DeadlineSlack) with { RunAt = null }, cancellationToken);
                await events.PublishStatusesAsync(write.Task!, [TaskStatus.Failed, TaskStatus.Pending], cancellationToken);
                repaired++;
            }
        }

        // After the running tasks are settled: every running record left has its lease again.
        var recounted = await queue.RecountRunningAsync(cancellationToken);
        if (recounted > 0)
        {
            Log.RunningRecounted(logger, recounted);
            repaired += recounted;
        }

        if (options.Value.Retention > TimeSpan.Zero)
        {
            var cutoff = time.GetUtcNow() - options.Value.Retention;
            var deleted = await store.DeleteFinishedBeforeAsync(cutoff, cancellationToken);
            if (deleted > 0)
            {
                Log.Retained(logger, deleted, cutoff);
            }
        }
        return repaired;
    }

    private async IAsyncEnumerable<TaskRecord> ListAsync(TaskStatus status, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Guid? after = null;
        while (true)
        {
            var page = await store.ListByStatusAsync(status, PageSize, after, cancellationToken);
            foreach (var task in page)
            {
                yield return task;
            }
            if (page.Count < PageSize)
            {
                yield break;
            }
            after = page[^1].Id;
        }
    }
}
