using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>Listings carry previews of the outputs, so a page stays small; the task itself has them whole.</summary>
[Collection("serve")]
public sealed class ListPreviewTests(ServeFixture fixture)
{
    private const int PreviewBytes = 1024;

    [Fact]
    public async Task List_TaskWithLargeOutput_ItemIsPreviewAndGetHasWholeOutput()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        // ~200 KB per stream; stdout's two-byte characters after one ASCII byte put byte 1024 inside a
        // character. The exit code is a failure the policy dead-letters, so both listings show the task.
        var submitted = await bob.SubmitAsync(new
        {
            language = "python",
            source = "import sys\nsys.stdout.buffer.write(('a' + 'é' * 100000).encode())\nsys.stderr.write('<' * 200000)\nsys.exit(1)",
            retry = new { max_attempts = 1, on = new[] { "runtime_error" } },
        }, wait: true);
        var id = (string)submitted["id"]!;
        var wholeStdout = "a" + new string('é', 100000);

        var got = await bob.GetAsync(id);
        var listed = await FindAsync(bob, "/v1/tasks?limit=200", id);
        var deadLetter = await FindAsync(bob, "/v1/dead-letters?limit=200", id);

        Assert.True((bool?)submitted["dead_lettered"] == true, submitted.ToJsonString());
        Assert.False((bool?)submitted["result"]!["preview"]);
        Assert.False((bool?)got["result"]!["preview"]);
        Assert.Equal(wholeStdout, (string?)got["result"]!["stdout"]);
        Assert.Equal(new string('<', 200000), (string?)got["result"]!["stderr"]);
        foreach (var item in new[] { listed, deadLetter })
        {
            var result = item["result"]!;
            Assert.True((bool?)result["preview"]);
            var stdout = (string)result["stdout"]!;
            Assert.True(Encoding.UTF8.GetByteCount(stdout) <= PreviewBytes, $"{Encoding.UTF8.GetByteCount(stdout)} bytes");
            Assert.Equal("a" + new string('é', 511), stdout);
            Assert.Equal(new string('<', PreviewBytes), (string?)result["stderr"]);
            // The output was not cut by its limit (1 MiB), only by the preview: the flag says the former.
            Assert.False((bool?)result["stdout_truncated"]);
            Assert.Equal("runtime_error", (string?)result["verdict"]);
            Assert.Equal(1, (int?)result["exit_code"]);
        }
    }

    private static async Task<JsonNode> FindAsync(ApiClient client, string path, string id)
    {
        var (status, page, _) = await client.SendAsync(HttpMethod.Get, path);
        Assert.Equal(HttpStatusCode.OK, status);
        var item = page!["items"]!.AsArray().FirstOrDefault(t => (string?)t!["id"] == id);
        Assert.True(item is not null, $"{path} does not list {id}");
        return item;
    }
}
