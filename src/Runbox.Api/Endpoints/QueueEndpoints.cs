using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Runbox.Api.Auth;
using Runbox.Api.Contracts;
using Runbox.Core.Seams;

namespace Runbox.Api.Endpoints;

/// <summary>The service as a whole: languages, queue depth, dead letters, workers.</summary>
public static class QueueEndpoints
{
    public static IEndpointRouteBuilder MapQueueEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/languages", Languages).WithTags("Service");
        app.MapGet("/v1/queue", Queue).WithTags("Service");
        app.MapGet("/v1/workers", Workers).WithTags("Service");
        app.MapGet("/v1/dead-letters", DeadLetters).WithTags("Dead letters");
        app.MapPost("/v1/dead-letters/{id}/requeue", Requeue).WithTags("Dead letters");
        return app;
    }

    public static async Task<Ok<IReadOnlyList<LanguageView>>> Languages(HttpContext context, ILanguageDirectory languages)
    {
        var offered = await languages.GetAsync(context.RequestAborted);
        return TypedResults.Ok<IReadOnlyList<LanguageView>>(offered.Select(l => new LanguageView(l.Id, l.Name, l.Version, l.SourceFile, l.Compiled)).ToList());
    }

    public static async Task<Ok<QueueView>> Queue(HttpContext context, ITaskQueue queue)
    {
        var stats = await queue.GetStatsAsync(context.RequestAborted);
        return TypedResults.Ok(new QueueView(
            stats.ReadyByPriority.OrderByDescending(p => p.Key).ToDictionary(p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.Value),
            stats.ReadyByPriority.Values.Sum() + stats.Delayed,
            stats.Delayed,
            stats.Running,
            stats.DeadLettered,
            stats.DeadLetterTrimmed,
            stats.OldestPendingAge is { } age ? (long)age.TotalMilliseconds : null));
    }

    public static async Task<Ok<IReadOnlyList<WorkerView>>> Workers(HttpContext context, ITaskQueue queue)
    {
        var workers = await queue.ListWorkersAsync(context.RequestAborted);
        return TypedResults.Ok<IReadOnlyList<WorkerView>>(workers.Select(w => new WorkerView(w.Id, w.Host, w.Slots, w.Busy, w.LastHeartbeat, w.Version, w.Languages.Select(l => l.Id).ToList())).ToList());
    }

    /// <summary>The caller's dead letters; an admin sees everyone's.</summary>
    public static Task<Results<Ok<PageView<TaskView>>, ProblemHttpResult>> DeadLetters(HttpContext context, ITaskStore store)
    {
        var caller = ApiKeyMiddleware.Of(context);
        return PageQuery.ListAsync(context, store, allowStatus: false, query => query with { User = caller.Admin ? null : caller.User, DeadLettered = true });
    }

    public static async Task<Results<Ok<TaskView>, ProblemHttpResult>> Requeue(HttpContext context, string id, TaskService service)
    {
        if (!Guid.TryParse(id, out var taskId))
        {
            return TasksEndpoints.BadId();
        }
        return TasksEndpoints.ToResult(await service.RequeueDeadLetterAsync(ApiKeyMiddleware.Of(context), taskId, context.RequestAborted), taskId);
    }
}
