using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Runbox.Api;

/// <summary>RFC 7807 problem documents, with an <c>errors</c> map per field for validation.</summary>
public static class Problems
{
    public static ProblemHttpResult Status(int status, string title, string detail, IReadOnlyDictionary<string, string[]>? errors = null)
    {
        var extensions = new Dictionary<string, object?>();
        if (errors is not null)
        {
            extensions["errors"] = errors;
        }
        return TypedResults.Problem(detail: detail, statusCode: status, title: title, extensions: extensions);
    }

    public static ProblemHttpResult Validation(IReadOnlyDictionary<string, string[]> errors) =>
        Status(StatusCodes.Status400BadRequest, "Invalid request", "One or more fields are invalid; see errors.", errors);

    public static ProblemHttpResult BadRequest(string field, string message) =>
        Status(StatusCodes.Status400BadRequest, "Invalid request", message, new Dictionary<string, string[]> { [field] = [message] });

    public static ProblemHttpResult NotFound(string what) => Status(StatusCodes.Status404NotFound, "Not found", what);

    public static ProblemHttpResult Conflict(string detail) => Status(StatusCodes.Status409Conflict, "Conflict", detail);

    /// <summary>How long a client told "unavailable" waits before it tries again.</summary>
    public const int RetryAfterSeconds = 5;

    /// <summary>503 with Retry-After: a dependency is away for now.</summary>
    public static Task Unavailable(HttpContext context, string detail)
    {
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Write(context, StatusCodes.Status503ServiceUnavailable, "Service unavailable", detail);
    }

    /// <summary>For middleware, which has no endpoint result to return.</summary>
    public static async Task Write(HttpContext context, int status, string title, string detail)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/problem+json";
        await JsonSerializer.SerializeAsync(context.Response.Body, new { type = "about:blank", title, status, detail }, cancellationToken: context.RequestAborted);
    }
}
