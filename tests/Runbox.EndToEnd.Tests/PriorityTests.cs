using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

public sealed class PriorityTests
{
    [Fact]
    public async Task OneSlotSaturated_HighestPriorityRunsFirst()
    {
        await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(),
            TestEnvironment.SharedRedis("e2e-prio-" + Guid.NewGuid().ToString("N")[..8]), extraArgs: ["--slots", "1"]);
        using var client = new ApiClient(server.BaseAddress);
        var blocker = (string)(await client.SubmitAsync(new { language = "bash", source = "sleep 2" }))["id"]!;
        await client.WaitForStatusAsync(blocker, "running");

        var ids = new Dictionary<string, int>();
        foreach (var priority in new[] { 1, 5, 2, 9, 3, 7, 4, 8, 6 })
        {
            ids[(string)(await client.SubmitAsync(new { language = "bash", source = "true", priority }))["id"]!] = priority;
        }
        var done = new List<(int Priority, DateTimeOffset Started)>();
        foreach (var (id, priority) in ids)
        {
            var task = await client.WaitForStatusAsync(id, "completed");
            done.Add((priority, DateTimeOffset.Parse((string)task["started_at"]!, System.Globalization.CultureInfo.InvariantCulture)));
        }

        Assert.Equal([9, 8, 7, 6, 5, 4, 3, 2, 1], done.OrderBy(d => d.Started).Select(d => d.Priority));
    }
}
