using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Runbox.Tests.Shared;

/// <summary>A thin HTTP client for the tests: raw JSON in and out, so the tests check the wire contract itself.</summary>
public sealed class ApiClient(Uri baseAddress, string? key = null) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(120) };

    public async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? json = null, IDictionary<string, string>? headers = null, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, contentType);
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonNode? body = null;
        if (text.Length > 0 && (response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.Ordinal) ?? false))
        {
            body = JsonNode.Parse(text);
        }
        return (response.StatusCode, body, response);
    }

    public async Task<JsonNode> SubmitAsync(object task, bool wait = false, string? idempotencyKey = null)
    {
        var headers = idempotencyKey is null ? null : new Dictionary<string, string> { ["Idempotency-Key"] = idempotencyKey };
        var (status, body, _) = await SendAsync(HttpMethod.Post, wait ? "/v1/tasks?wait=true" : "/v1/tasks", System.Text.Json.JsonSerializer.Serialize(task), headers);
        Assert.True(status is HttpStatusCode.Accepted or HttpStatusCode.OK, $"submit answered {(int)status}: {body}");
        return body!;
    }

    public async Task<JsonNode> GetAsync(string id)
    {
        var (status, body, _) = await SendAsync(HttpMethod.Get, $"/v1/tasks/{id}");
        Assert.True(status == HttpStatusCode.OK, $"GET task answered {(int)status}: {body}");
        return body!;
    }

    /// <summary>Polls until the task's status satisfies <paramref name="done"/>; fails with the last view on timeout.</summary>
    public async Task<JsonNode> WaitForAsync(string id, Func<JsonNode, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        JsonNode last;
        do
        {
            last = await GetAsync(id);
            if (done(last))
            {
                return last;
            }
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"task {id} did not get there in time; last view: {last}");
        return last;
    }

    /// <summary>Polls any JSON endpoint until <paramref name="done"/> holds.</summary>
    public async Task<JsonNode> WaitForEndpointAsync(string path, Func<JsonNode, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonNode? last;
        do
        {
            last = (await SendAsync(HttpMethod.Get, path)).Body;
            if (last is not null && done(last))
            {
                return last;
            }
            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"{path} did not get there in time; last: {last}");
        return last!;
    }

    public Task<JsonNode> WaitForStatusAsync(string id, string status, TimeSpan? timeout = null) =>
        WaitForAsync(id, t => (string?)t["status"] == status, timeout);

    /// <summary>Reads the task's server-sent events until the server ends the stream.</summary>
    public async Task<List<(string Event, JsonNode Data)>> ReadEventsAsync(string id, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/tasks/{id}/events");
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var events = new List<(string, JsonNode)>();
        string? name = null;
        while (await reader.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name is not null)
            {
                events.Add((name, JsonNode.Parse(line[6..])!));
                name = null;
            }
        }
        return events;
    }

    public void Dispose() => _http.Dispose();
}
