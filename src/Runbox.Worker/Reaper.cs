using Runbox.Core.Seams;
using Runbox.Lifecycle;

namespace Runbox.Worker;

/// <summary>
/// Ends the attempts of workers that died or froze: the queue hands each expired lease over under a new
/// fence (so the lost worker's late writes are refused), and the lifecycle engine ends the attempt by the
/// task's own retry policy. Both halves are idempotent; an attempt whose hand-over was not finished is
/// taken over again when its lease expires. Run by <see cref="Maintenance"/> on one process at a time.
/// </summary>
public sealed class Reaper(ITaskQueue queue, TaskLifecycle lifecycle)
{
    public const int BatchSize = 100;

    /// <summary>One bounded pass; returns how many leases it handled.</summary>
    public async Task<int> ReapOnceAsync(CancellationToken cancellationToken)
    {
        var reaped = await queue.ReapAsync(BatchSize, cancellationToken);
        foreach (var task in reaped)
        {
            await lifecycle.EndLostLeaseAsync(task, cancellationToken);
        }
        return reaped.Count;
    }
}
