using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Queue.Tests;

public sealed class WaitAndEventsTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WaitForWork_TaskEnqueuedWhileWaiting_WakesEveryWaiter()
    {
        await using var h = new QueueHarness(redis.Redis);
        var waiting = Enumerable.Range(0, 3).Select(_ => h.Queue.WaitForWorkAsync(TimeSpan.FromMinutes(1), Token)).ToArray();
        // Let the marker loop block on BZPOPMIN first.
        await Task.Delay(300, Token);
        Assert.DoesNotContain(waiting, w => w.IsCompleted);

        await h.EnqueueAsync("alice");

        await Task.WhenAll(waiting).WaitAsync(TimeSpan.FromSeconds(5), Token);
    }

    [Fact]
    public async Task WaitForWork_NothingQueued_ReturnsAfterMaxWait()
    {
        await using var h = new QueueHarness(redis.Redis);
        var waiting = h.Queue.WaitForWorkAsync(TimeSpan.FromSeconds(10), Token);
        await Task.Delay(200, Token);
        Assert.False(waiting.IsCompleted);

        h.Time.Advance(TimeSpan.FromSeconds(10));

        await waiting.WaitAsync(TimeSpan.FromSeconds(5), Token);
    }

    [Fact]
    public async Task Events_PublishedThenRead_InOrderAndResumableAfterId()
    {
        await using var events = NewEvents(out _);
        var taskId = Guid.NewGuid();
        await events.PublishAsync(taskId, new TaskEvent("status", "running") { Attempt = 1 }, Token);
        await events.PublishAsync(taskId, new TaskEvent("output", "hello\n") { Stream = "stdout", Attempt = 1 }, Token);

        var all = await events.ReadAsync(taskId, null, TimeSpan.Zero, Token);
        Assert.Equal(["running", "hello\n"], all.Select(e => e.Data));
        Assert.Equal((null, "stdout"), (all[0].Stream, all[1].Stream));
        Assert.All(all, e => Assert.Equal(1, e.Attempt));

        await events.PublishAsync(taskId, new TaskEvent("status", "completed") { Attempt = 1 }, Token);
        var rest = await events.ReadAsync(taskId, all[1].Id, TimeSpan.Zero, Token);
        Assert.Equal("completed", Assert.Single(rest).Data);
    }

    [Fact]
    public async Task Events_LastId_IsTheNewestEventsOrNullWithoutEvents()
    {
        await using var events = NewEvents(out _);
        var taskId = Guid.NewGuid();
        Assert.Null(await events.LastIdAsync(taskId, Token));

        for (var i = 0; i < 3; i++)
        {
            await events.PublishAsync(taskId, new TaskEvent("output", i.ToString(System.Globalization.CultureInfo.InvariantCulture)) { Stream = "stdout" }, Token);
        }

        var all = await events.ReadAsync(taskId, null, TimeSpan.Zero, Token);
        Assert.Equal(3, all.Count);
        var last = await events.LastIdAsync(taskId, Token);
        Assert.Equal(all[^1].Id, last);
        Assert.Empty(await events.ReadAsync(taskId, last, TimeSpan.Zero, Token));
    }

    [Fact]
    public async Task Events_ReaderCaughtUp_WakesOnPublish()
    {
        await using var events = NewEvents(out _);
        var taskId = Guid.NewGuid();
        // The harness's clock is fake and does not move: only the publish can end this wait (a timeout would
        // return no event).
        var reading = events.ReadAsync(taskId, null, TimeSpan.FromSeconds(30), Token);
        await Task.Delay(200, Token);
        Assert.False(reading.IsCompleted);

        await events.PublishAsync(taskId, new TaskEvent("status", "running"), Token);

        Assert.Equal("running", Assert.Single(await reading).Data);
    }

    [Fact]
    public async Task Events_Stream_CappedAndExpiring()
    {
        await using var events = NewEvents(out var options);
        var taskId = Guid.NewGuid();
        for (var i = 0; i < 500; i++)
        {
            await events.PublishAsync(taskId, new TaskEvent("output", i.ToString(System.Globalization.CultureInfo.InvariantCulture)) { Stream = "stdout" }, Token);
        }

        var key = new QueueKeys(options.KeyPrefix).TaskEvents(taskId);
        var length = await redis.Redis.GetDatabase().StreamLengthAsync(key);
        var ttl = await redis.Redis.GetDatabase().KeyTimeToLiveAsync(key);
        Assert.InRange(length, options.EventsPerTask, options.EventsPerTask + 200);
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromSeconds(1), options.EventsRetention);
        await redis.Redis.GetDatabase().KeyDeleteAsync(key);
    }

    [Fact]
    public async Task PublishOutput_UnderTheRunningFence_IsAppended()
    {
        await using var h = new QueueHarness(redis.Redis);
        await using var events = EventsOf(h);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        Assert.True(await events.PublishOutputAsync(item.TaskId, lease.Fence, Output("hello\n", lease.Attempt), Token));

        var read = Assert.Single(await events.ReadAsync(item.TaskId, null, TimeSpan.Zero, Token));
        Assert.Equal(("output", "hello\n", "stdout", lease.Attempt), (read.Kind, read.Data, read.Stream, read.Attempt));
    }

    /// <summary>Regression: output events were not fenced, so a frozen worker's late output reached live readers.</summary>
    [Fact]
    public async Task PublishOutput_StaleFenceAfterReapAndReclaim_RefusedAndOnlyTheLiveOutputIsRead()
    {
        await using var h = new QueueHarness(redis.Redis);
        await using var events = EventsOf(h);
        var item = await h.EnqueueAsync("alice");
        var frozen = await h.ClaimOneAsync("frozen");
        h.Time.Advance(h.Options.LeaseDuration + h.Options.ReapGrace + TimeSpan.FromSeconds(1));
        await h.RetryNowAsync(Assert.Single(await h.Queue.ReapAsync(10, Token)));
        var live = await h.ClaimOneAsync("live");

        var stale = await events.PublishOutputAsync(item.TaskId, frozen.Fence, Output("late\n", frozen.Attempt), Token);
        var current = await events.PublishOutputAsync(item.TaskId, live.Fence, Output("live\n", live.Attempt), Token);

        Assert.False(stale);
        Assert.True(current);
        Assert.Equal(["live\n"], (await events.ReadAsync(item.TaskId, null, TimeSpan.Zero, Token)).Select(e => e.Data));
    }

    [Fact]
    public async Task PublishOutput_TaskNotRunning_IsRefused()
    {
        await using var h = new QueueHarness(redis.Redis);
        await using var events = EventsOf(h);
        var pending = await h.EnqueueAsync("alice");

        Assert.False(await events.PublishOutputAsync(pending.TaskId, 1, Output("x", 1), Token));
        Assert.False(await events.PublishOutputAsync(Guid.NewGuid(), 1, Output("x", 1), Token));
        Assert.Empty(await events.ReadAsync(pending.TaskId, null, TimeSpan.Zero, Token));
    }

    private static TaskEvent Output(string text, int attempt) => new("output", text) { Stream = "stdout", Attempt = attempt };

    private RedisTaskEvents EventsOf(QueueHarness harness) =>
        new(redis.Redis, Options.Create(harness.Options), TimeProvider.System, NullLogger<RedisTaskEvents>.Instance);

    private RedisTaskEvents NewEvents(out QueueOptions options)
    {
        options = new QueueOptions
        {
            KeyPrefix = "test-" + Guid.NewGuid().ToString("N"),
            EventsPerTask = 100,
            EventsRetention = TimeSpan.FromMinutes(1),
        };
        return new RedisTaskEvents(redis.Redis, Options.Create(options), TimeProvider.System, NullLogger<RedisTaskEvents>.Instance);
    }
}
