using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Worker;

/// <summary>
/// Claims tasks while it has free slots, runs each in its own attempt, and keeps the leases alive.
/// Waiting for work blocks on the queue (no polling). On shutdown it stops claiming, lets running
/// attempts finish within the grace period, then stops the rest and hands them back.
/// </summary>
public sealed class WorkerPool : BackgroundService
{
    private static readonly string Version = typeof(WorkerPool).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";

    private readonly ITaskQueue _queue;
    private readonly ISandbox _sandbox;
    private readonly AttemptRunner _runner;
    private readonly WorkerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkerPool> _logger;
    private readonly ConcurrentDictionary<Guid, ActiveAttempt> _active = new();
    // Neither is disposed: the host may dispose this service while a stopped start-up still unwinds
    // the loops that use them, and neither holds anything the garbage collector does not free.
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _hardStop = new();

    internal WorkerPool(ITaskQueue queue, ISandbox sandbox, AttemptRunner runner, IOptions<WorkerOptions> options, TimeProvider time, ILogger<WorkerPool> logger)
    {
        _queue = queue;
        _sandbox = sandbox;
        _runner = runner;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _slots = new SemaphoreSlim(_options.Slots, _options.Slots);
        WorkerId = _options.WorkerId;
    }

    public string WorkerId { get; }

    public int Busy => _active.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Log.WorkerStarted(_logger, WorkerId, _options.Slots);
        using var background = CancellationTokenSource.CreateLinkedTokenSource(_hardStop.Token);
        var heartbeats = HeartbeatLoopAsync(background.Token);
        var cancellations = _queue.SubscribeCancellationsAsync(OnCancelRequestedAsync, background.Token);
        var running = new ConcurrentDictionary<Task, byte>();

        try
        {
            await ClaimLoopAsync(running, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Shutdown: no new claims. Running attempts get the grace period, then are stopped and
        // handed back (their runner writes a retryable infrastructure failure with our fence).
        Log.WorkerStopping(_logger, WorkerId, _active.Count, _options.ShutdownGrace);
        var all = Task.WhenAll(running.Keys);
        if (await Task.WhenAny(all, Task.Delay(_options.ShutdownGrace, _time, CancellationToken.None)) != all)
        {
            foreach (var attempt in _active.Values)
            {
                attempt.RequestStop(StopReason.Shutdown);
            }
            await all;
        }

        await background.CancelAsync();
        await IgnoreCancellation(heartbeats);
        await IgnoreCancellation(cancellations);
    }

    private async Task ClaimLoopAsync(ConcurrentDictionary<Task, byte> running, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await _slots.WaitAsync(stoppingToken);
            var free = 1;
            while (_slots.Wait(0, CancellationToken.None))
            {
                free++;
            }

            IReadOnlyList<Lease> leases;
            try
            {
                leases = await _queue.ClaimAsync(WorkerId, free, stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                _slots.Release(free);
                Log.LoopError(_logger, exception);
                await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken);
                continue;
            }

            if (free > leases.Count)
            {
                _slots.Release(free - leases.Count);
            }
            foreach (var lease in leases)
            {
                var attempt = new ActiveAttempt(lease);
                _active[lease.TaskId] = attempt;
                var work = RunOneAsync(attempt);
                running[work] = 0;
                _ = work.ContinueWith(t => running.TryRemove(t, out _), TaskScheduler.Default);
            }
            if (leases.Count == 0)
            {
                try
                {
                    await _queue.WaitForWorkAsync(TimeSpan.FromSeconds(1), stoppingToken);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    Log.LoopError(_logger, exception);
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken);
                }
            }
        }
    }

    private async Task RunOneAsync(ActiveAttempt attempt)
    {
        // Run off the claim loop's context so a slow sandbox start never delays the next claim.
        await Task.Yield();
        try
        {
            await _runner.RunAsync(attempt, WorkerId, _hardStop.Token);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !_hardStop.IsCancellationRequested)
        {
            // The lease stays until it expires; the reaper then retries the task elsewhere.
            Log.LoopError(_logger, exception);
        }
        finally
        {
            _active.TryRemove(attempt.Lease.TaskId, out _);
            attempt.Dispose();
            _slots.Release();
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.HeartbeatInterval, _time);
        do
        {
            try
            {
                // With its languages, which API processes offer: they drop out with the registration when the
                // worker stops, and Redis gets them back within a heartbeat when it lost them.
                await _queue.RegisterWorkerAsync(
                    new WorkerInfo(WorkerId, Environment.MachineName, _options.Slots, _active.Count, _time.GetUtcNow(), Version) { Languages = _sandbox.Languages },
                    cancellationToken);
                var attempts = _active.Values.ToList();
                if (attempts.Count == 0)
                {
                    continue;
                }
                var statuses = await _queue.HeartbeatAsync(WorkerId, attempts.Select(a => a.Lease).ToList(), cancellationToken);
                foreach (var status in statuses)
                {
                    if (!_active.TryGetValue(status.TaskId, out var attempt))
                    {
                        continue;
                    }
                    switch (status.State)
                    {
                        case LeaseState.Lost:
                            attempt.RequestStop(StopReason.LeaseLost);
                            break;
                        case LeaseState.CancelRequested:
                            attempt.RequestStop(StopReason.UserCancel);
                            break;
                        case LeaseState.PastDeadline:
                            attempt.RequestStop(StopReason.PastDeadline);
                            break;
                    }
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                Log.LoopError(_logger, exception);
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }

    private Task OnCancelRequestedAsync(Guid taskId)
    {
        if (_active.TryGetValue(taskId, out var attempt))
        {
            attempt.RequestStop(StopReason.UserCancel);
        }
        return Task.CompletedTask;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await _hardStop.CancelAsync();
    }


    private static async Task IgnoreCancellation(Task task)
    {
        try
        {
            await task;
        }
        catch (OperationCanceledException)
        {
        }
    }
}
