using System.Net;
using System.Net.Sockets;
using System.Text;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>
/// Thousands of generated malformed requests: every one is a 4xx, none is a 5xx or a dropped
/// connection, nothing is stored, and the server is healthy with flat memory afterwards.
/// </summary>
[Collection("serve")]
public sealed class GeneratedBadInputTests(ServeFixture fixture)
{
    private const int Requests = 3000;
    private static readonly string[] NotAString = ["1", "-1", "true", "[]", "{}", "[\"x\"]", "1e309"];
    private static readonly string[] NotAList = ["\"x\"", "1", "true", "{}"];

    /// <summary>For each field, values that are each wrong for it (nulls and empty lists are valid "use the default").</summary>
    private static readonly (string Field, string[] Values)[] WrongValues =
    [
        ("language", [.. NotAString, "\"\"", "\"\\u0000\"", "\"\\ud800\"", "\"\u202e\u0301\"", "\"" + new string('x', 70_000) + "\""]),
        ("source", [.. NotAString, "\"\"", "\"   \""]),
        ("stdin", NotAString),
        ("args", [.. NotAList, "[1]", "[null]", "[{}]", "[\"" + new string('a', 5000) + "\"]", "[" + string.Join(",", Enumerable.Repeat("\"a\"", 100)) + "]"]),
        ("files", [.. NotAList, "[1]", "[null]", "[{\"name\":\"../../etc/passwd\",\"content\":\"x\"}]", "[{\"name\":\"a\",\"content\":1}]", "[{\"name\":\"/abs\"}]", "[" + string.Join(",", Enumerable.Repeat("{\"name\":\"a\"}", 70)) + "]"]),
        ("priority", ["\"5\"", "-1", "10", "1e309", "9999999999999999999999", "[]", "{}", "true", "1.5"]),
        ("limits", ["\"x\"", "1", "[]", "{\"wall_time_ms\":-5}", "{\"memory_mb\":\"256\"}", "{\"bogus\":1}", "{\"processes\":0}", "{\"output_bytes\":1e12}"]),
        ("retry", ["\"x\"", "1", "[]", "{\"max_attempts\":1000}", "{\"on\":[\"everything\"]}", "{\"on\":\"timeout\"}", "{\"max_attempts\":0}"]),
        ("labels", ["\"x\"", "1", "[]", "{\"\":\"v\"}", "{\"k\":1}", "{\"k\":{}}", "{\"k\":\"" + new string('v', 300) + "\"}"]),
    ];

    [Fact]
    public async Task ThousandsOfMalformedRequests_AllClientErrors_ServerHealthyAndFlat()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);
        var random = new Random(20261129);
        var before = await CountTasksAsync(alice);
        var rssBefore = await RssAsync(alice);
        var statuses = new Dictionary<int, int>();

        for (var i = 0; i < Requests; i++)
        {
            var body = Generate(random);
            var (status, problem, response) = await alice.SendAsync(HttpMethod.Post, "/v1/tasks", body.Text, contentType: body.ContentType);
            statuses[(int)status] = statuses.GetValueOrDefault((int)status) + 1;
            Assert.True((int)status is >= 400 and < 500, $"request {i} ({body.Kind}) answered {(int)status}: {Shorten(body.Text)} -> {problem}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        await SlowAndAbusiveClientsAsync(fixture.Server.Port);
        Assert.Equal(before, await CountTasksAsync(alice));
        var (ready, _, _) = await alice.SendAsync(HttpMethod.Get, "/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready);
        var done = await alice.SubmitAsync(new { language = "bash", source = "echo still fine" }, wait: true);
        Assert.Equal("still fine\n", (string?)done["result"]!["stdout"]);
        var rssAfter = await RssAsync(alice);
        Assert.True(rssAfter - rssBefore < 150L * 1024 * 1024, $"server memory grew from {rssBefore >> 20} MiB to {rssAfter >> 20} MiB");
        Assert.True(statuses.Keys.Count > 1, "the generator produced only one kind of error: " + string.Join(", ", statuses));
    }

    private static (string Kind, string Text, string ContentType) Generate(Random random)
    {
        switch (random.Next(8))
        {
            case 0:
                // Random bytes, often not even UTF-8.
                var bytes = new byte[random.Next(1, 400)];
                random.NextBytes(bytes);
                return ("bytes", Encoding.Latin1.GetString(bytes), "application/json");
            case 1:
                // A valid submission cut short.
                var valid = "{\"language\":\"python\",\"source\":\"print(1)\",\"stdin\":\"x\",\"priority\":3}";
                return ("truncated", valid[..random.Next(1, valid.Length - 1)], "application/json");
            case 2:
                // One field replaced by something wrong for it.
                var (field, values) = WrongValues[random.Next(WrongValues.Length)];
                var body = $"\"{field}\":{values[random.Next(values.Length)]}";
                var rest = string.Join(",", new[] { "\"language\":\"python\"", "\"source\":\"print(1)\"" }.Where(f => !f.StartsWith($"\"{field}\"", StringComparison.Ordinal)));
                return ("wrong-value", $"{{{rest},{body}}}", "application/json");
            case 3:
                // Deep nesting in a field.
                var depth = random.Next(65, 3000);
                return ("nesting", $"{{\"language\":\"python\",\"source\":\"x\",\"labels\":{new string('[', depth)}{new string(']', depth)}}}", "application/json");
            case 4:
                // Unknown or duplicated-looking fields.
                return ("unknown-field", $"{{\"language\":\"python\",\"source\":\"x\",\"{RandomWord(random)}\":1}}", "application/json");
            case 5:
                // Valid JSON, invalid values.
                var priority = random.Next(10, 1000) * (random.Next(2) == 0 ? 1 : -1);
                return ("bad-values", $"{{\"language\":\"{RandomWord(random)}\",\"source\":\"\",\"priority\":{priority}}}", "application/json");
            case 6:
                // The wrong media type entirely.
                return ("media-type", "language=python&source=x", random.Next(2) == 0 ? "text/plain" : "application/x-www-form-urlencoded");
            default:
                // Unicode edge cases where strings are expected.
                var weird = new[] { "\\u0000", "\\ud83d", "\\udc00", "\u0000", "\uFFFF", "\uFEFF" }[random.Next(6)];
                return ("unicode", $"{{\"language\":\"{weird}\",\"source\":\"{weird}\",\"files\":[{{\"name\":\"{weird}\",\"content\":\"\"}}]}}", "application/json");
        }
    }

    /// <summary>Clients that send a huge header, trickle a body, or hang up mid-request.</summary>
    private static async Task SlowAndAbusiveClientsAsync(int port)
    {
        using (var huge = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tasks");
            request.Headers.TryAddWithoutValidation("X-Junk", new string('j', 64 * 1024));
            using var response = await huge.SendAsync(request);
            Assert.True((int)response.StatusCode is >= 400 and < 500, $"huge header answered {(int)response.StatusCode}");
        }

        for (var i = 0; i < 20; i++)
        {
            using var socket = new TcpClient();
            await socket.ConnectAsync(IPAddress.Loopback, port);
            var stream = socket.GetStream();
            var head = $"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ServeFixture.AliceKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"language\":";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            // Hang up with the body half sent: the server must drop the request and store nothing.
        }
    }

    private static string RandomWord(Random random) => new(Enumerable.Range(0, random.Next(1, 12)).Select(_ => (char)random.Next('a', 'z' + 1)).ToArray());

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";

    private static async Task<int> CountTasksAsync(ApiClient client)
    {
        var (_, page, _) = await client.SendAsync(HttpMethod.Get, "/v1/tasks?limit=200");
        var count = page!["items"]!.AsArray().Count;
        Assert.True(count < 200, "the fixture user has too many tasks for a quick count");
        return count;
    }

    private static async Task<long> RssAsync(ApiClient client)
    {
        var (_, _, response) = await client.SendAsync(HttpMethod.Get, "/metrics");
        var metrics = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var line = metrics.Split('\n').First(l => l.StartsWith("process_resident_memory_bytes ", StringComparison.Ordinal));
        return (long)double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
