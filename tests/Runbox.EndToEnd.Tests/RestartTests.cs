using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>The embedded default (SQLite + its own redis-server with AOF) keeps every accepted task across a restart.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task ServeRestart_EmbeddedStoreAndRedis_LosesNothing()
    {
        var data = TestEnvironment.NewDataDirectory();
        var port = RunboxProcess.FreePort();
        var ids = new List<string>();
        await using (var first = await RunboxProcess.StartAsync("serve", data, new Dictionary<string, string>(), port, "--slots", "1"))
        {
            using var client = new ApiClient(first.BaseAddress);
            for (var i = 0; i < 6; i++)
            {
                ids.Add((string)(await client.SubmitAsync(new { language = "bash", source = $"sleep 0.3; echo task {i}" }))["id"]!);
            }
            await client.WaitForStatusAsync(ids[0], "running");
            await first.StopAsync();
            // A clean stop (the sandbox was once disposed twice at exit and the process died of it).
            Assert.Equal(0, first.ExitCode);
            Assert.DoesNotContain("Unhandled exception", first.Log, StringComparison.Ordinal);
        }

        await using var second = await RunboxProcess.StartAsync("serve", data, new Dictionary<string, string>(), port, "--slots", "2");
        using var again = new ApiClient(second.BaseAddress);
        for (var i = 0; i < ids.Count; i++)
        {
            var task = await again.WaitForStatusAsync(ids[i], "completed", TimeSpan.FromSeconds(90));
            Assert.Equal($"task {i}\n", (string?)task["result"]!["stdout"]);
        }
    }
}
