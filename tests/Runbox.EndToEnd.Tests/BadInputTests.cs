using System.Net;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

[Collection("serve")]
public sealed class BadInputTests(ServeFixture fixture)
{
    public static TheoryData<string, string, int, string> BadSubmissions() => new()
    {
        { "malformed json", "{\"language\": \"python\", ", 400, "body" },
        { "not an object", "[1, 2]", 400, "body" },
        { "unknown field", "{\"language\":\"python\",\"source\":\"print(1)\",\"sauce\":1}", 400, "sauce" },
        { "wrong type", "{\"language\":\"python\",\"source\":\"print(1)\",\"priority\":\"high\"}", 400, "priority" },
        { "nested wrong type", "{\"language\":\"python\",\"source\":\"x\",\"limits\":{\"memory_mb\":[1]}}", 400, "limits.memory_mb" },
        { "number as string", "{\"language\":\"python\",\"source\":\"x\",\"limits\":{\"memory_mb\":\"256\"}}", 400, "limits.memory_mb" },
        { "unknown language", "{\"language\":\"cobol\",\"source\":\"x\"}", 400, "language" },
        { "empty source", "{\"language\":\"python\",\"source\":\"\"}", 400, "source" },
        { "priority out of range", "{\"language\":\"python\",\"source\":\"x\",\"priority\":12}", 400, "priority" },
        { "limit over maximum", "{\"language\":\"python\",\"source\":\"x\",\"limits\":{\"memory_mb\":999999}}", 400, "limits.memory_mb" },
        { "path traversal", "{\"language\":\"python\",\"source\":\"x\",\"files\":[{\"name\":\"../etc/x\",\"content\":\"\"}]}", 400, "files[0].name" },
        { "bad base64", "{\"language\":\"python\",\"source\":\"x\",\"files\":[{\"name\":\"a.bin\",\"content\":\"%%%\",\"encoding\":\"base64\"}]}", 400, "files[0].content" },
        { "deep nesting", new string('[', 5000) + new string(']', 5000), 400, "body" },
    };

    [Theory]
    [MemberData(nameof(BadSubmissions))]
    public async Task Submit_BadInput_IsProblemNamingTheFieldAndStoresNothing(string name, string body, int status, string field)
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);
        var before = await CountAsync(alice);

        var (code, problem, response) = await alice.SendAsync(HttpMethod.Post, "/v1/tasks", body);

        Assert.True((int)code == status, $"{name}: {(int)code} {problem}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(problem!["errors"]?[field] is not null, $"{name}: no error for '{field}' in {problem}");
        Assert.Equal(before, await CountAsync(alice));
    }

    [Fact]
    public async Task Submit_OversizeBody_Is413()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);
        var huge = $"{{\"language\":\"python\",\"source\":\"{new string('x', 9 * 1024 * 1024)}\"}}";

        // As curl does for large bodies: the server may refuse before the upload.
        var (code, problem, _) = await alice.SendAsync(HttpMethod.Post, "/v1/tasks", huge, new Dictionary<string, string> { ["Expect"] = "100-continue" });

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, code);
        Assert.NotNull(problem);
    }

    [Fact]
    public async Task Submit_WrongContentType_Is415()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);

        var (code, _, _) = await alice.SendAsync(HttpMethod.Post, "/v1/tasks", "language=python", contentType: "application/x-www-form-urlencoded");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, code);
    }

    [Theory]
    [InlineData("GET", "/v1/tasks/not-a-uuid", 400)]
    [InlineData("POST", "/v1/tasks/not-a-uuid/cancel", 400)]
    [InlineData("GET", "/v1/tasks/00000000-0000-0000-0000-000000000001", 404)]
    [InlineData("GET", "/v1/tasks?limit=0", 400)]
    [InlineData("GET", "/v1/tasks?limit=abc", 400)]
    [InlineData("GET", "/v1/tasks?status=sleeping", 400)]
    [InlineData("GET", "/v1/tasks?cursor=%%%garbage", 400)]
    [InlineData("POST", "/v1/tasks?wait=maybe", 400)]
    [InlineData("DELETE", "/v1/tasks", 405)]
    [InlineData("PUT", "/v1/tasks/00000000-0000-0000-0000-000000000001", 405)]
    [InlineData("GET", "/v1/nothing-here", 404)]
    public async Task Request_BadPathQueryOrMethod_IsClientError(string method, string path, int status)
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);

        var (code, _, response) = await alice.SendAsync(new HttpMethod(method), path, method == "POST" ? "{}" : null);

        Assert.Equal(status, (int)code);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    private static async Task<int> CountAsync(ApiClient client)
    {
        var count = 0;
        string? cursor = null;
        do
        {
            var (_, page, _) = await client.SendAsync(HttpMethod.Get, "/v1/tasks?limit=200" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            count += page!["items"]!.AsArray().Count;
            cursor = (string?)page["next_cursor"];
        }
        while (cursor is not null);
        return count;
    }
}
