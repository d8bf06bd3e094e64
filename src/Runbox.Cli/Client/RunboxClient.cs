using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Runbox.Api.Contracts;

namespace Runbox.Cli.Client;

/// <summary>The HTTP API as the CLI uses it. Errors come back as <see cref="ApiException"/> with the problem's text.</summary>
public sealed class RunboxClient : IDisposable
{
    /// <summary>Lenient on purpose: a newer server may add fields an older CLI does not know.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly HttpClient _http;

    public RunboxClient(Uri server, string? apiKey)
    {
        _http = new HttpClient { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        if (!string.IsNullOrEmpty(apiKey))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
    }

    public Uri Server => _http.BaseAddress!;

    /// <summary>Submits a task; with <paramref name="wait"/> the server holds the answer until the task settles (bounded).</summary>
    public async Task<TaskView> SubmitAsync(JsonObject body, string? idempotencyKey, CancellationToken cancellationToken, bool wait = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, wait ? "/v1/tasks?wait=true" : "/v1/tasks") { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return await SendAsync<TaskView>(request, cancellationToken);
    }

    public Task<TaskView> GetAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<TaskView>(new HttpRequestMessage(HttpMethod.Get, $"/v1/tasks/{Uri.EscapeDataString(id)}"), cancellationToken);

    public Task<TaskView> CancelAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<TaskView>(new HttpRequestMessage(HttpMethod.Post, $"/v1/tasks/{Uri.EscapeDataString(id)}/cancel"), cancellationToken);

    public Task<TaskView> RetryAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<TaskView>(new HttpRequestMessage(HttpMethod.Post, $"/v1/tasks/{Uri.EscapeDataString(id)}/retry"), cancellationToken);

    public Task<PageView<TaskView>> DeadLettersAsync(string? cursor, CancellationToken cancellationToken) =>
        SendAsync<PageView<TaskView>>(new HttpRequestMessage(HttpMethod.Get, "/v1/dead-letters" + (cursor is null ? "" : $"?cursor={Uri.EscapeDataString(cursor)}")), cancellationToken);

    public Task<TaskView> RequeueAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<TaskView>(new HttpRequestMessage(HttpMethod.Post, $"/v1/dead-letters/{Uri.EscapeDataString(id)}/requeue"), cancellationToken);

    public async Task<string> MetricsAsync(CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync("/metrics", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadAsStringAsync(cancellationToken);
    }

    public Task<List<WorkerView>> WorkersAsync(CancellationToken cancellationToken) =>
        SendAsync<List<WorkerView>>(new HttpRequestMessage(HttpMethod.Get, "/v1/workers"), cancellationToken);

    public Task<List<LanguageView>> LanguagesAsync(CancellationToken cancellationToken) =>
        SendAsync<List<LanguageView>>(new HttpRequestMessage(HttpMethod.Get, "/v1/languages"), cancellationToken);

    /// <summary>The task's server-sent events, as (event name, JSON data) pairs, until the server ends the stream.</summary>
    public async IAsyncEnumerable<(string Event, JsonElement Data)> EventsAsync(string id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/tasks/{Uri.EscapeDataString(id)}/events");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken), Encoding.UTF8);
        string? name = null;
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (name is not null && data.Length > 0)
                {
                    yield return (name, JsonDocument.Parse(data.ToString()).RootElement.Clone());
                }
                name = null;
                data.Clear();
            }
            else if (line.StartsWith("event:", StringComparison.Ordinal))
            {
                name = line[6..].Trim();
            }
            else if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Append(line[5..].TrimStart());
            }
        }
    }

    private async Task<T> SendAsync<T>(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, cancellationToken);
            }
            catch (HttpRequestException exception)
            {
                throw new ApiException(0, $"cannot reach {Server}: {exception.Message} (is `runbox serve` running? set --server or RUNBOX_URL)");
            }
            using (response)
            {
                await EnsureSuccessAsync(response, cancellationToken);
                return (await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken))!;
            }
        }
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var message = $"{(int)response.StatusCode} {response.ReasonPhrase}";
        try
        {
            var problem = JsonNode.Parse(text);
            message = problem?["detail"]?.GetValue<string>() ?? problem?["title"]?.GetValue<string>() ?? message;
            if (problem?["errors"] is JsonObject errors)
            {
                message += string.Concat(errors.Select(e => $"\n  {e.Key}: {string.Join(" ", e.Value!.AsArray().Select(v => v!.GetValue<string>()))}"));
            }
        }
        catch (JsonException)
        {
        }
        throw new ApiException(response.StatusCode == HttpStatusCode.NotFound ? 404 : (int)response.StatusCode, message);
    }

    public void Dispose() => _http.Dispose();
}

public sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
