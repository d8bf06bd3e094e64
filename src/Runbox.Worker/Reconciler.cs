using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Lifecycle;

namespace Runbox.Worker;

/// <summary>
/// Makes the queue agree with the store, the system of record: a pending task the queue lacks (a
/// crash between the store write and the enqueue, or a Redis that lost its data) is enqueued again;
/// a running task the queue no longer knows is closed as a lost attempt and retried; what a partial
/// loss cut off (a record without its place in the queue or its lease, a user's running count left
/// up by runs that no longer exist) is put back. Also applies retention. Run by <see cref="Maintenance"/>
/// on one process at a time, though it would be safe in several: every queue repair is one idempotent
/// script and every store write is conditional.
/// </summary>
public sealed class Reconciler(
    ITaskQueue queue,
    ITaskStore store,
    TaskLifecycle lifecycle,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    ILogger<Reconciler> logger)
{
    private const int PageSize = 200;

    /// <summary>One full pass; returns how many tasks it repaired.</summary>
    public async Task<int> ReconcileOnceAsync(CancellationToken cancellationToken)
    {
        var repaired = 0;
        // Pending first, then running: after the running tasks are settled, every running record left has
        // its lease again, and the recount below sees them all.
        foreach (var status in (TaskStatus[])[TaskStatus.Pending, TaskStatus.Running])
        {
            await foreach (var task in ListAsync(status, cancellationToken))
            {
                var outcome = await lifecycle.ReconcileAsync(task, cancellationToken);
                if (outcome != ReconcileOutcome.Intact)
                {
                    Log.Reconciled(logger, task.Id, task.Status.ToWire(), outcome.ToString());
                    repaired++;
                }
            }
        }

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
