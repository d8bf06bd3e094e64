using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Worker;

/// <summary>
/// The cluster's maintenance (the <see cref="Reaper"/>, the <see cref="Reconciler"/> and its retention), run by
/// one worker process at a time: every process tries to take or renew the lead each
/// <see cref="WorkerOptions.ReapInterval"/>, and the one that holds it reaps then, and reconciles each
/// <see cref="WorkerOptions.ReconcileInterval"/>. N workers cost one reaper and one reconciler, not N full
/// scans of the pending and running tasks. When the leader dies, another takes over once its
/// <see cref="WorkerOptions.MaintenanceTerm"/> has run out; a leader that stops cleanly gives the lead up at once.
/// </summary>
public sealed class Maintenance(
    ITaskQueue queue,
    Reaper reaper,
    Reconciler reconciler,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    ILogger<Maintenance> logger) : BackgroundService
{
    private readonly WorkerOptions _options = options.Value;
    private long? _reconciledAt;

    /// <summary>Whether this process led the maintenance at its last tick.</summary>
    public bool Leads { get; private set; }

    /// <summary>One tick: take or renew the lead and, while leading, do what is due.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        var leads = await queue.TryLeadMaintenanceAsync(_options.WorkerId, _options.MaintenanceTerm, cancellationToken);
        if (leads != Leads)
        {
            Log.MaintenanceLead(logger, _options.WorkerId, leads ? "took" : "lost");
            Leads = leads;
            _reconciledAt = null;
        }
        if (!leads)
        {
            return;
        }
        while (await reaper.ReapOnceAsync(cancellationToken) == Reaper.BatchSize)
        {
        }
        // A new leader reconciles at once: the one before may have died halfway.
        if (_reconciledAt is null || time.GetElapsedTime(_reconciledAt.Value) >= _options.ReconcileInterval)
        {
            _reconciledAt = time.GetTimestamp();
            await reconciler.ReconcileOnceAsync(cancellationToken);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.ReapInterval, time);
        do
        {
            try
            {
                await TickAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                Log.LoopError(logger, exception);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (Leads)
        {
            try
            {
                await queue.ReleaseMaintenanceAsync(_options.WorkerId, cancellationToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // The lead lapses by itself after its term.
                Log.LoopError(logger, exception);
            }
        }
    }
}
