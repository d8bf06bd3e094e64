using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Runbox.Core.Seams;
using StackExchange.Redis;

namespace Runbox.Queue.Tests;

/// <summary>A queue under a key prefix of its own (tests run in parallel on one server) and a fake clock.</summary>
public sealed class QueueHarness : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    public QueueHarness(IConnectionMultiplexer redis, Action<QueueOptions>? configure = null)
    {
        Options = new QueueOptions
        {
            ConnectionString = redis.Configuration,
            KeyPrefix = "test-" + Guid.NewGuid().ToString("N"),
            LeaseDuration = TimeSpan.FromSeconds(30),
            ReapGrace = TimeSpan.FromSeconds(5),
        };
        configure?.Invoke(Options);
        Redis = redis;
        Keys = new QueueKeys(Options.KeyPrefix);
        Queue = new RedisTaskQueue(redis, Microsoft.Extensions.Options.Options.Create(Options), Time, NullLogger<RedisTaskQueue>.Instance);
    }

    public FakeTimeProvider Time { get; } = new(Start);

    public QueueOptions Options { get; }

    public IConnectionMultiplexer Redis { get; }

    public IDatabase Database => Redis.GetDatabase();

    internal QueueKeys Keys { get; }

    public RedisTaskQueue Queue { get; }

    public static QueueItem Item(string user, int priority = 5) => new(Guid.NewGuid(), user, priority);

    public async Task<QueueItem> EnqueueAsync(string user, int priority = 5, Func<QueueItem, QueueItem>? change = null)
    {
        var item = Item(user, priority);
        item = change is null ? item : change(item);
        await Queue.EnqueueAsync(item, TestContext.Current.CancellationToken);
        return item;
    }

    public async Task<Lease> ClaimOneAsync(string worker = "w1")
    {
        var leases = await Queue.ClaimAsync(worker, 1, TestContext.Current.CancellationToken);
        return Assert.Single(leases);
    }

    /// <summary>
    /// What the lifecycle engine does after a take-over, as a test needs it: ends the reaped attempt with a retry
    /// due now, so the task can be claimed again.
    /// </summary>
    public async Task RetryNowAsync(ReapedTask reaped) =>
        Assert.True(await Queue.FinishAsync(reaped.Lease, new AttemptOutcome(OutcomeKind.Retry, TaskStatus.Failed) { RetryAt = Time.GetUtcNow() }, TestContext.Current.CancellationToken));

    public Task<QueuedTaskState?> StateAsync(Guid taskId) => Queue.GetStateAsync(taskId, TestContext.Current.CancellationToken);

    /// <summary>The running count per user as Redis holds it.</summary>
    public async Task<Dictionary<string, long>> RunningCountsAsync() =>
        (await Database.HashGetAllAsync(Keys.Users))
            .Where(e => e.Name.StartsWith("run:"))
            .ToDictionary(e => ((string)e.Name!)["run:".Length..], e => (long)e.Value);

    /// <summary>The holders of the leases, counted per user from the task records.</summary>
    public async Task<Dictionary<string, long>> LeasesPerUserAsync()
    {
        var counts = new Dictionary<string, long>();
        foreach (var id in await Database.SortedSetRangeByRankAsync(Keys.Leases))
        {
            var user = (string)(await Database.HashGetAsync(Keys.Prefix + "t:" + id, "user"))!;
            counts[user] = counts.GetValueOrDefault(user) + 1;
        }
        return counts;
    }

    public async ValueTask DisposeAsync()
    {
        await Queue.DisposeAsync();
        // Leave the shared server as clean as found.
        var server = Redis.GetServers().First(s => !s.IsReplica);
        await foreach (var key in server.KeysAsync(pattern: Keys.Prefix + "*"))
        {
            await Database.KeyDeleteAsync(key);
        }
    }
}
