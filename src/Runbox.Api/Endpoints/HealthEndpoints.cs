using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Runbox.Core.Metrics;
using Runbox.Core.Seams;

namespace Runbox.Api.Endpoints;

/// <summary>A readiness check of one dependency: the store, Redis, the sandbox.</summary>
public interface IReadinessCheck
{
    string Name { get; }

    /// <summary>Null when healthy, else what is wrong.</summary>
    Task<string?> CheckAsync(CancellationToken cancellationToken);

    /// <summary>What an operator should see about the dependency (the sandbox's cgroup mode and runtime), or null.</summary>
    IReadOnlyDictionary<string, string>? Details => null;
}

public static class HealthEndpoints
{
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(3);

    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health/live", () => TypedResults.Ok(new { status = "live" })).WithTags("Health");
        app.MapGet("/health/ready", Ready).WithTags("Health");
        app.MapGet("/metrics", Metrics).WithTags("Health");
        return app;
    }

    public static async Task<JsonHttpResult<ReadyView>> Ready(HttpContext context, IEnumerable<IReadinessCheck> checks)
    {
        var results = new Dictionary<string, string>(StringComparer.Ordinal);
        var details = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        foreach (var check in checks)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            timeout.CancelAfter(CheckTimeout);
            string? problem;
            try
            {
                problem = await check.CheckAsync(timeout.Token);
                if (check.Details is { } known)
                {
                    details[check.Name] = known;
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
            {
                problem = exception.Message;
            }
            results[check.Name] = problem ?? "ok";
        }
        var ready = results.Values.All(v => v == "ok");
        return TypedResults.Json(new ReadyView(ready ? "ready" : "not_ready", results, details), statusCode: ready ? 200 : 503);
    }

    public static async Task<ContentHttpResult> Metrics(HttpContext context, RunboxMetrics metrics, ITaskQueue queue)
    {
        var gauges = new List<(string, string, string, double)>
        {
            ("process_resident_memory_bytes", "Resident memory of this process.", "", Environment.WorkingSet),
        };
        try
        {
            var stats = await queue.GetStatsAsync(context.RequestAborted);
            foreach (var (priority, count) in stats.ReadyByPriority)
            {
                gauges.Add(("runbox_queue_ready", "Tasks ready to run, by priority.", $"priority=\"{priority}\"", count));
            }
            gauges.Add(("runbox_queue_delayed", "Tasks waiting for a retry backoff.", "", stats.Delayed));
            gauges.Add(("runbox_queue_running", "Tasks holding a lease.", "", stats.Running));
            gauges.Add(("runbox_queue_dead_lettered", "Tasks in the dead letters.", "", stats.DeadLettered));
            gauges.Add(("runbox_queue_oldest_pending_seconds", "Age of the oldest ready task.", "", stats.OldestPendingAge?.TotalSeconds ?? 0));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // Scrapes must not fail because Redis is down; the gauge says so instead.
            gauges.Add(("runbox_queue_up", "Whether the queue answered this scrape.", "", 0));
        }
        return TypedResults.Text(metrics.Render(gauges), "text/plain; version=0.0.4");
    }

    public sealed record ReadyView(string Status, IReadOnlyDictionary<string, string> Checks, IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Details);
}

/// <summary>Store and queue answer a cheap read.</summary>
public sealed class StoreReadinessCheck(ITaskStore store) : IReadinessCheck
{
    public string Name => "store";

    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        await store.GetAsync(Guid.Empty, cancellationToken);
        return null;
    }
}

public sealed class QueueReadinessCheck(ITaskQueue queue) : IReadinessCheck
{
    public string Name => "redis";

    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        await queue.GetStatsAsync(cancellationToken);
        return null;
    }
}
