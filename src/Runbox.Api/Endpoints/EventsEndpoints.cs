using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Runbox.Api.Auth;
using Runbox.Api.Contracts;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Api.Endpoints;

/// <summary>
/// <c>GET /v1/tasks/{id}/events</c>: server-sent events. First the current status, then the output of
/// the attempt running now (so a late watcher sees it from the start), then every new status and
/// output chunk as it happens, from whichever process produces it. Ends after the task settles.
/// </summary>
public static class EventsEndpoints
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static IEndpointRouteBuilder MapEventsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/tasks/{id}/events", Stream).WithTags("Tasks").Produces(StatusCodes.Status200OK, contentType: "text/event-stream");
        return app;
    }

    public static async Task Stream(HttpContext context, string id, TaskService service, ITaskStore store, ITaskEvents events, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
    {
        var token = context.RequestAborted;
        if (!Guid.TryParse(id, out var taskId))
        {
            await TasksEndpoints.BadId().ExecuteAsync(context);
            return;
        }
        var task = await service.GetAsync(ApiKeyMiddleware.Of(context), taskId, token);
        if (task is null)
        {
            await Problems.NotFound($"No task {taskId}.").ExecuteAsync(context);
            return;
        }

        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        var options = json.Value.SerializerOptions;

        // Read the backlog before the status so nothing falls between the two.
        var backlog = await events.ReadAsync(taskId, null, TimeSpan.Zero, token);
        var after = backlog.Count > 0 ? backlog[^1].Id : null;
        task = await store.GetAsync(taskId, token) ?? task;
        await WriteAsync(context, "status", null, new StatusEventView(task.Status.ToWire(), task.Attempt), options, token);
        // The attempt's output so far (or all of it, for an attempt that already ended), while the
        // bounded stream still holds it; the stored result is the complete record.
        if (task.Status != TaskStatus.Pending)
        {
            foreach (var chunk in backlog.Where(e => e.Kind == "output" && e.Attempt == task.Attempt))
            {
                await WriteAsync(context, "output", chunk.Id, new OutputEventView(chunk.Stream ?? "stdout", chunk.Data, chunk.Attempt), options, token);
            }
        }
        if (TaskService.IsSettled(task.Status))
        {
            return;
        }

        var quiet = TimeSpan.Zero;
        while (!token.IsCancellationRequested)
        {
            var news = await events.ReadAsync(taskId, after, TimeSpan.FromSeconds(1), token);
            if (news.Count == 0)
            {
                quiet += TimeSpan.FromSeconds(1);
                if (quiet >= KeepAlive)
                {
                    quiet = TimeSpan.Zero;
                    await context.Response.WriteAsync(": keep-alive\n\n", token);
                    await context.Response.Body.FlushAsync(token);
                    // The events stream is bounded and may expire; the store is the truth.
                    var now = await store.GetAsync(taskId, token);
                    if (now is null || TaskService.IsSettled(now.Status))
                    {
                        return;
                    }
                }
                continue;
            }

            quiet = TimeSpan.Zero;
            after = news[^1].Id;
            foreach (var item in news)
            {
                if (item.Kind == "output")
                {
                    await WriteAsync(context, "output", item.Id, new OutputEventView(item.Stream ?? "stdout", item.Data, item.Attempt), options, token);
                    continue;
                }
                await WriteAsync(context, "status", item.Id, new StatusEventView(item.Data, item.Attempt), options, token);
                if (TaskStatusNames.TryParse(item.Data, out var status) && TaskService.IsSettled(status))
                {
                    // Failed or timeout may be followed by a retry in the same store write; the store says which.
                    var now = await store.GetAsync(taskId, token);
                    if (now is null || TaskService.IsSettled(now.Status))
                    {
                        return;
                    }
                }
            }
        }
    }

    private static async Task WriteAsync<T>(HttpContext context, string name, string? id, T data, JsonSerializerOptions options, CancellationToken cancellationToken)
    {
        var text = $"{(id is null ? "" : $"id: {id}\n")}event: {name}\ndata: {JsonSerializer.Serialize(data, options)}\n\n";
        await context.Response.WriteAsync(text, cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}
