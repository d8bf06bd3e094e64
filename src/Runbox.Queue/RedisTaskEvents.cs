using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;
using StackExchange.Redis;

namespace Runbox.Queue;

/// <summary>
/// <see cref="ITaskEvents"/> on Redis: one capped stream per task (XADD MAXLEN ~) that expires a
/// while after its last event, so finished tasks' streams vanish by themselves. A reader that has
/// caught up waits on one shared pub/sub subscription per process instead of polling or holding a
/// blocking XREAD per reader.
/// </summary>
public sealed class RedisTaskEvents : ITaskEvents, IAsyncDisposable
{
    private const string PublishScript = "publish_event";

    private readonly IConnectionMultiplexer redis;
    private readonly QueueOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly QueueKeys keys;
    private readonly RedisScripts scripts;
    private readonly Lock gate = new();
    private readonly Dictionary<Guid, Waiter> waiters = [];
    private Task? subscribed;

    public RedisTaskEvents(IConnectionMultiplexer redis, IOptions<QueueOptions> options, TimeProvider time, ILogger<RedisTaskEvents> logger)
    {
        this.redis = redis;
        this.options = options.Value;
        this.time = time;
        this.logger = logger;
        keys = new QueueKeys(this.options.KeyPrefix);
        scripts = new RedisScripts(redis, logger, [], [PublishScript]);
    }

    public async Task PublishAsync(Guid taskId, TaskEvent taskEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskEvent);
        await scripts.EvaluateAsync(PublishScript, [keys.TaskEvents(taskId)], Arguments(taskId, taskEvent), cancellationToken);
    }

    public async Task<bool> PublishOutputAsync(Guid taskId, long fence, TaskEvent taskEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskEvent);
        var published = await scripts.EvaluateAsync(PublishScript, [keys.TaskEvents(taskId), keys.Task(taskId)], [.. Arguments(taskId, taskEvent), fence], cancellationToken);
        return !published.IsNull;
    }

    public async Task<IReadOnlyList<TaskEvent>> ReadAsync(Guid taskId, string? afterId, TimeSpan wait, CancellationToken cancellationToken)
    {
        var events = await ReadRangeAsync(taskId, afterId, cancellationToken);
        if (events.Count > 0 || wait <= TimeSpan.Zero)
        {
            return events;
        }
        await EnsureSubscribedAsync().WaitAsync(cancellationToken);
        var waiter = Join(taskId);
        try
        {
            // Read again after joining: an event published in between would otherwise be missed.
            events = await ReadRangeAsync(taskId, afterId, cancellationToken);
            if (events.Count > 0)
            {
                return events;
            }
            try
            {
                await waiter.Signal.Task.WaitAsync(wait, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                return [];
            }
            return await ReadRangeAsync(taskId, afterId, cancellationToken);
        }
        finally
        {
            Leave(taskId, waiter);
        }
    }

    public async Task<string?> LastIdAsync(Guid taskId, CancellationToken cancellationToken)
    {
        var newest = await RedisScripts.Reach(redis.GetDatabase().StreamRangeAsync(keys.TaskEvents(taskId), "-", "+", count: 1, messageOrder: Order.Descending).WaitAsync(cancellationToken));
        return newest.Length > 0 ? (string?)newest[0].Id : null;
    }

    public async ValueTask DisposeAsync()
    {
        if (subscribed is not null)
        {
            await redis.GetSubscriber().UnsubscribeAsync(keys.EventsChannel, OnEvent);
        }
    }

    private RedisValue[] Arguments(Guid taskId, TaskEvent taskEvent) =>
    [
        options.EventsPerTask,
        (long)options.EventsRetention.TotalMilliseconds,
        keys.EventsChannel.ToString(),
        taskId.ToString("D"),
        taskEvent.Kind,
        taskEvent.Data,
        taskEvent.Stream ?? "",
        taskEvent.Attempt,
    ];

    private async Task<IReadOnlyList<TaskEvent>> ReadRangeAsync(Guid taskId, string? afterId, CancellationToken cancellationToken)
    {
        // "(" makes the start exclusive (Redis 6.2+): the events strictly after the caller's last one.
        RedisValue from = afterId is null ? "-" : "(" + afterId;
        var entries = await RedisScripts.Reach(redis.GetDatabase().StreamRangeAsync(keys.TaskEvents(taskId), from, "+", options.EventsPerTask).WaitAsync(cancellationToken));
        var events = new List<TaskEvent>(entries.Length);
        foreach (var entry in entries)
        {
            var stream = (string?)entry["stream"];
            events.Add(new TaskEvent((string)entry["kind"]!, (string)entry["data"]!)
            {
                Id = entry.Id,
                Stream = string.IsNullOrEmpty(stream) ? null : stream,
                Attempt = (int)entry["attempt"],
            });
        }
        return events;
    }

    private Task EnsureSubscribedAsync()
    {
        lock (gate)
        {
            if (subscribed is null || subscribed.IsFaulted || subscribed.IsCanceled)
            {
                subscribed = redis.GetSubscriber().SubscribeAsync(keys.EventsChannel, OnEvent);
            }
            return subscribed;
        }
    }

    private void OnEvent(RedisChannel channel, RedisValue message)
    {
        if (!Guid.TryParse((string?)message, out var taskId))
        {
            Log.MalformedMessage(logger, channel.ToString());
            return;
        }
        lock (gate)
        {
            // Every reader waiting on this task wakes and reads; later readers get a fresh signal.
            if (waiters.Remove(taskId, out var waiter))
            {
                waiter.Signal.TrySetResult();
            }
        }
    }

    private Waiter Join(Guid taskId)
    {
        lock (gate)
        {
            if (!waiters.TryGetValue(taskId, out var waiter))
            {
                waiter = new Waiter();
                waiters[taskId] = waiter;
            }
            waiter.Readers++;
            return waiter;
        }
    }

    private void Leave(Guid taskId, Waiter waiter)
    {
        lock (gate)
        {
            waiter.Readers--;
            if (waiter.Readers == 0 && waiters.TryGetValue(taskId, out var current) && current == waiter)
            {
                waiters.Remove(taskId);
            }
        }
    }

    private sealed class Waiter
    {
        public TaskCompletionSource Signal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Readers { get; set; }
    }
}
