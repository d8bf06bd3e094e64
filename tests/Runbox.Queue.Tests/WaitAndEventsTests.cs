using System.Diagnostics;
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
    public async Task Events_ReaderCaughtUp_WakesOnPublish()
    {
        await using var events = NewEvents(out _);
        var taskId = Guid.NewGuid();
        var reading = events.ReadAsync(taskId, null, TimeSpan.FromSeconds(30), Token);
        await Task.Delay(200, Token);
        Assert.False(reading.IsCompleted);
        var clock = Stopwatch.StartNew();

        await events.PublishAsync(taskId, new TaskEvent("status", "running"), Token);

        Assert.Equal("running", Assert.Single(await reading.WaitAsync(TimeSpan.FromSeconds(5), Token)).Data);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
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
