using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Runbox.Core.Execution;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Api.Tests;

/// <summary>The task endpoints in process: what each answers, and what the store and the queue hold afterwards.</summary>
public sealed class TasksApiTests
{
    private static string Redis => Environment.GetEnvironmentVariable("RUNBOX_TEST_REDIS") is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException("RUNBOX_TEST_REDIS is not set: run the tests through scripts/test, which starts redis-server.");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Submit_ValidTask_Accepted_PendingInTheStoreAndQueued()
    {
        await using var api = await ApiHarness.StartAsync(Redis);

        var (status, body, response) = await api.SendAsync(HttpMethod.Post, "/v1/tasks", """{"language":"python","source":"print(1)","priority":7}""");

        Assert.Equal(HttpStatusCode.Accepted, status);
        var id = Guid.Parse((string)body!["id"]!);
        Assert.Equal($"/v1/tasks/{id}", response.Headers.Location!.ToString());
        Assert.Equal(TaskStatus.Pending, (await api.Store.GetAsync(id, Ct))!.Status);
        Assert.Equal(("pending", 0), ((await api.Queue.GetStateAsync(id, Ct))!.State, (await api.Queue.GetStateAsync(id, Ct))!.Attempt));
    }

    [Fact]
    public async Task Submit_FileNamedLikeTheSourceFile_400WithTheFieldAndNothingStored()
    {
        await using var api = await ApiHarness.StartAsync(Redis);

        var (status, body, _) = await api.SendAsync(HttpMethod.Post, "/v1/tasks", """{"language":"python","source":"print(1)","files":[{"name":"main.py","content":"x"}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("source file", (string?)body!["errors"]!["files[0].name"]![0], StringComparison.Ordinal);
        Assert.Empty((await api.Store.ListAsync(new TaskQuery(), Ct)).Items);
    }

    [Fact]
    public async Task Cancel_PendingTask_CancelledAndNoWorkerCanClaimIt_ThenAgain409()
    {
        await using var api = await ApiHarness.StartAsync(Redis);
        var id = await api.SubmitAsync();

        var (status, body, _) = await api.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");
        var (again, _, _) = await api.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");

        Assert.Equal((HttpStatusCode.OK, "cancelled"), (status, (string?)body!["status"]));
        Assert.Empty(await api.Queue.ClaimAsync("w1", 1, Ct));
        Assert.Equal(HttpStatusCode.Conflict, again);
    }

    [Fact]
    public async Task Retry_FailedTask_PendingAgainAndClaimable_ButAPendingOneIs409()
    {
        await using var api = await ApiHarness.StartAsync(Redis);
        var id = await api.SubmitAsync();
        Assert.Equal(HttpStatusCode.Conflict, (await api.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/retry")).Status);
        await FailAsync(api, Guid.Parse(id));

        var (status, body, _) = await api.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/retry");

        Assert.Equal((HttpStatusCode.OK, "pending"), (status, (string?)body!["status"]));
        Assert.Equal(Guid.Parse(id), Assert.Single(await api.Queue.ClaimAsync("w2", 1, Ct)).TaskId);
    }

    /// <summary>With Redis away, what needs it alone answers 503 with Retry-After, not 500; a submit the store took is still accepted.</summary>
    [Fact]
    public async Task RedisUnreachable_QueueView503WithRetryAfter_SubmitStillAccepted()
    {
        var port = FreePort();
        using var redis = Process.Start("redis-server", ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])!;
        await using var api = await ApiHarness.StartAsync($"127.0.0.1:{port}");
        redis.Kill();
        await redis.WaitForExitAsync(Ct);

        var (status, problem, response) = await api.SendAsync(HttpMethod.Get, "/v1/queue");
        var id = await api.SubmitAsync();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("5", response.Headers.GetValues("Retry-After").Single());
        Assert.Equal("Service unavailable", (string?)problem!["title"]);
        Assert.Equal(TaskStatus.Pending, (await api.Store.GetAsync(Guid.Parse(id), Ct))!.Status);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Claims and fails the task's attempt with a runtime error (not retried), as a worker would.</summary>
    private static async Task FailAsync(ApiHarness api, Guid id)
    {
        var lease = Assert.Single(await api.Queue.ClaimAsync("w1", 1, Ct));
        var running = await api.Store.TransitionAsync([new TransitionRequest(id, TaskStatus.Pending, TaskStatus.Running, "claimed") { Fence = lease.Fence }], Ct);
        var decision = AttemptDecision.ForResult(new ExecutionResult { Verdict = Verdict.RuntimeError, ExitCode = 1 }, running.Task!, 1, DateTimeOffset.UtcNow, 0);
        await api.Store.TransitionAsync(decision.ToTransitions(id, lease.Fence, "w1", "failed", new ExecutionResult { Verdict = Verdict.RuntimeError, ExitCode = 1 }), Ct);
        await api.Queue.FinishAsync(lease, decision.ToQueueOutcome(null), Ct);
    }
}
