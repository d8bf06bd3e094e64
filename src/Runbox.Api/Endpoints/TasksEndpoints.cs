using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Runbox.Api.Auth;
using Runbox.Api.Contracts;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Core.Validation;

namespace Runbox.Api.Endpoints;

public static class TasksEndpoints
{
    private const int MaxIdempotencyKeyLength = 200;

    public static IEndpointRouteBuilder MapTasksEndpoints(this IEndpointRouteBuilder app)
    {
        var tasks = app.MapGroup("/v1/tasks").WithTags("Tasks");
        tasks.MapPost("/", Submit).Accepts<TaskSubmission>("application/json")
            .Produces<TaskView>(StatusCodes.Status202Accepted).Produces<TaskView>(StatusCodes.Status200OK).ProducesValidationProblem();
        tasks.MapGet("/", List);
        tasks.MapGet("/{id}", Get);
        tasks.MapPost("/{id}/cancel", Cancel);
        tasks.MapPost("/{id}/retry", Retry);
        tasks.MapGet("/{id}/artifacts/{name}", Artifact);
        return app;
    }

    public static async Task<IResult> Submit(HttpContext context, TaskService service, IOptions<ApiOptions> options, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
    {
        var caller = ApiKeyMiddleware.Of(context);
        var wait = ParseFlag(context.Request.Query["wait"]);
        if (wait is null)
        {
            return Problems.BadRequest("wait", "must be true or false.");
        }

        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > MaxIdempotencyKeyLength)
        {
            return Problems.BadRequest("Idempotency-Key", $"must be at most {MaxIdempotencyKeyLength} characters.");
        }

        var (submission, problem) = await RequestBody.ReadAsync<TaskSubmission>(context, json.Value.SerializerOptions);
        if (problem is not null)
        {
            return problem;
        }

        var result = await service.SubmitAsync(caller, submission!, key.Length > 0 ? key : null, context.RequestAborted);
        if (result.Errors is not null)
        {
            return Problems.Validation(result.Errors);
        }

        var task = result.Task!;
        var location = $"/v1/tasks/{task.Id}";
        if (wait == true)
        {
            var settled = await service.WaitForSettledAsync(task.Id, options.Value.MaxWait, context.RequestAborted) ?? task;
            return TaskService.IsSettled(settled.Status)
                ? TypedResults.Ok(TaskView.From(settled))
                : TypedResults.Accepted(location, TaskView.From(settled));
        }
        return TypedResults.Accepted(location, TaskView.From(task));
    }

    public static async Task<Results<Ok<TaskView>, ProblemHttpResult>> Get(HttpContext context, string id, TaskService service)
    {
        if (!Guid.TryParse(id, out var taskId))
        {
            return BadId();
        }
        var task = await service.GetAsync(ApiKeyMiddleware.Of(context), taskId, context.RequestAborted);
        return task is null ? Problems.NotFound($"No task {taskId}.") : TypedResults.Ok(TaskView.From(task));
    }

    /// <summary>The caller's own tasks, even for an admin: the listing is "my tasks".</summary>
    public static Task<Results<Ok<PageView<TaskView>>, ProblemHttpResult>> List(HttpContext context, ITaskStore store) =>
        PageQuery.ListAsync(context, store, allowStatus: true, query => query with { User = ApiKeyMiddleware.Of(context).User });

    public static async Task<Results<Ok<TaskView>, ProblemHttpResult>> Cancel(HttpContext context, string id, TaskService service)
    {
        if (!Guid.TryParse(id, out var taskId))
        {
            return BadId();
        }
        return ToResult(await service.CancelAsync(ApiKeyMiddleware.Of(context), taskId, context.RequestAborted), taskId);
    }

    public static async Task<Results<Ok<TaskView>, ProblemHttpResult>> Retry(HttpContext context, string id, TaskService service)
    {
        if (!Guid.TryParse(id, out var taskId))
        {
            return BadId();
        }
        return ToResult(await service.RetryAsync(ApiKeyMiddleware.Of(context), taskId, context.RequestAborted), taskId);
    }

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> Artifact(HttpContext context, string id, string name, TaskService service, ITaskStore store)
    {
        if (!Guid.TryParse(id, out var taskId))
        {
            return BadId();
        }
        if (await service.GetAsync(ApiKeyMiddleware.Of(context), taskId, context.RequestAborted) is null)
        {
            return Problems.NotFound($"No task {taskId}.");
        }
        var content = await store.GetArtifactAsync(taskId, name, context.RequestAborted);
        return content is null
            ? Problems.NotFound($"Task {taskId} has no artifact '{name}'.")
            : TypedResults.File(content, "application/octet-stream", Path.GetFileName(name));
    }

    internal static Results<Ok<TaskView>, ProblemHttpResult> ToResult(CommandResult result, Guid taskId) => result.Status switch
    {
        CommandStatus.Ok => TypedResults.Ok(TaskView.From(result.Task!)),
        CommandStatus.Conflict => Problems.Status(StatusCodes.Status409Conflict, "Conflict", result.Detail!),
        _ => Problems.NotFound($"No task {taskId}."),
    };

    internal static ProblemHttpResult BadId() => Problems.BadRequest("id", "must be a task id (a UUID).");

    private static bool? ParseFlag(string? value) => value switch
    {
        null or "" or "false" or "0" => false,
        "true" or "1" => true,
        _ => null,
    };
}

/// <summary>Reads a JSON body with errors a client can act on: which field, what was wrong.</summary>
internal static class RequestBody
{
    public static async Task<(T? Value, ProblemHttpResult? Problem)> ReadAsync<T>(HttpContext context, JsonSerializerOptions options)
        where T : class
    {
        if (!context.Request.HasJsonContentType())
        {
            return (null, Problems.Status(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send the body as application/json."));
        }
        // Refuse a declared oversize body before reading it: a client that sent Expect: 100-continue
        // then never uploads it. A body without a length is cut off by the server's limit while read.
        var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (context.Request.ContentLength > limit)
        {
            return (null, Problems.Status(StatusCodes.Status413PayloadTooLarge, "Payload too large", $"The body is larger than the maximum of {limit} bytes."));
        }
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(context.Request.Body, options, context.RequestAborted);
            return value is null
                ? (null, Problems.BadRequest("body", "must be a JSON object."))
                : (value, null);
        }
        catch (JsonException exception)
        {
            var field = string.IsNullOrEmpty(exception.Path) || exception.Path == "$" ? "body" : exception.Path.TrimStart('$', '.');
            var message = exception.Message.Split(" Path:", 2)[0];
            return (null, Problems.BadRequest(field, message));
        }
        catch (BadHttpRequestException exception)
        {
            return (null, Problems.Status(exception.StatusCode, "Bad request", exception.Message));
        }
    }
}

/// <summary>The paging query shared by task and dead-letter listings.</summary>
internal static class PageQuery
{
    public const int MaxLimit = 200;
    public const int DefaultLimit = 50;

    public static (TaskQuery? Query, ProblemHttpResult? Problem) Parse(IQueryCollection query, bool allowStatus)
    {
        var errors = new Dictionary<string, string[]>();
        var limit = DefaultLimit;
        var rawLimit = query["limit"].ToString();
        if (rawLimit.Length > 0 && (!int.TryParse(rawLimit, out limit) || limit is < 1 or > MaxLimit))
        {
            errors["limit"] = [$"must be a whole number from 1 to {MaxLimit}."];
        }

        TaskStatus? status = null;
        var rawStatus = query["status"].ToString();
        if (rawStatus.Length > 0)
        {
            if (!allowStatus || !TaskStatusNames.TryParse(rawStatus, out var parsed))
            {
                errors["status"] = ["must be one of pending, running, completed, failed, timeout, cancelled."];
            }
            else
            {
                status = parsed;
            }
        }

        var cursor = query["cursor"].ToString();
        return errors.Count > 0
            ? (null, Problems.Validation(errors))
            : (new TaskQuery { Limit = limit, Status = status, Cursor = cursor.Length > 0 ? cursor : null }, null);
    }

    /// <summary>One page of tasks for a listing endpoint; <paramref name="scope"/> narrows the query to what the caller may see.</summary>
    public static async Task<Results<Ok<PageView<TaskView>>, ProblemHttpResult>> ListAsync(HttpContext context, ITaskStore store, bool allowStatus, Func<TaskQuery, TaskQuery> scope)
    {
        var (query, problem) = Parse(context.Request.Query, allowStatus);
        if (problem is not null)
        {
            return problem;
        }
        try
        {
            var page = await store.ListAsync(scope(query!), context.RequestAborted);
            return TypedResults.Ok(new PageView<TaskView>(page.Items.Select(TaskView.FromListing).ToList(), page.NextCursor));
        }
        catch (ArgumentException exception)
        {
            // The store's word for a cursor it did not hand out.
            return Problems.BadRequest("cursor", exception.Message);
        }
    }
}
