using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Execution;
using Runbox.Core.Metrics;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Worker;

/// <summary>
/// Hands back the tasks of workers that died or froze. The queue's reap script does the deciding
/// atomically (bump the fence, then retry, time out or dead-letter); this records the outcome in the
/// store with the new fence, so the lost worker's late writes are refused there too. Any worker may
/// run it at any time: both halves are idempotent.
/// </summary>
public sealed class Reaper(
    ITaskQueue queue,
    ITaskStore store,
    ITaskEvents events,
    RunboxMetrics metrics,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    ILogger<Reaper> logger) : BackgroundService
{
    private const int BatchSize = 100;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ReapInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                while (await ReapOnceAsync(stoppingToken) == BatchSize)
                {
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                Log.LoopError(logger, exception);
            }
        }
    }

    /// <summary>One bounded pass; returns how many leases it handled.</summary>
    public async Task<int> ReapOnceAsync(CancellationToken cancellationToken)
    {
        var reaped = await queue.ReapAsync(BatchSize, cancellationToken);
        foreach (var task in reaped)
        {
            await RecordAsync(task, cancellationToken);
        }
        return reaped.Count;
    }

    private async Task RecordAsync(ReapedTask reaped, CancellationToken cancellationToken)
    {
        var outcome = reaped.Outcome;
        var result = outcome.Status == TaskStatus.Timeout
            ? new ExecutionResult { Verdict = Verdict.TimeLimit, Error = "the attempt ran past its deadline and its worker did not finish it" }
            : outcome.Status == TaskStatus.Cancelled
                ? new ExecutionResult { Verdict = Verdict.Cancelled, Error = "cancelled while its worker was unreachable" }
                : ExecutionResult.InternalError(outcome.Error ?? "the worker running this attempt stopped renewing its lease");

        var steps = AttemptDecision.FromQueue(outcome).ToTransitions(reaped.TaskId, reaped.NewFence, null, "lease expired", result, "retry after lost lease");
        var write = await store.TransitionAsync(steps, cancellationToken);
        if (write.Succeeded)
        {
            Log.Reaped(logger, reaped.TaskId, write.Task!.Status.ToWire(), reaped.NewFence);
            metrics.Transitioned(outcome.Status);
            await events.PublishStatusesAsync(write.Task, steps.Select(s => s.To), cancellationToken);
        }
        else if (write.Conflict == TransitionConflict.NotFound || (write.ActualStatus is { } actual && TaskStateMachine.IsFinished(actual) && actual != TaskStatus.Pending))
        {
            // The worker committed its result and died before telling the queue: the store's result
            // stands and the queue lets go of the task.
            Log.DroppedFinished(logger, reaped.TaskId, write.ActualStatus?.ToWire() ?? "deleted");
            await queue.RemoveAsync(reaped.TaskId, cancellationToken);
        }
    }
}
