using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Queue.Tests;

public sealed class ServiceCollectionTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AddRunboxQueue_ValidOptions_ResolvesWorkingQueueAndEvents()
    {
        var prefix = "test-" + Guid.NewGuid().ToString("N");
        await using var provider = new ServiceCollection()
            .AddLogging()
            .AddRunboxQueue(o =>
            {
                o.ConnectionString = redis.ConnectionString;
                o.KeyPrefix = prefix;
            })
            .BuildServiceProvider();

        var queue = provider.GetRequiredService<ITaskQueue>();
        Assert.Same(provider.GetRequiredService<RedisTaskQueue>(), queue);
        Assert.IsType<RedisTaskEvents>(provider.GetRequiredService<ITaskEvents>());
        var item = new QueueItem(Guid.NewGuid(), "alice", 5);
        await queue.EnqueueAsync(item, Token);
        Assert.Equal("pending", (await queue.GetStateAsync(item.TaskId, Token))!.State);
        await queue.RemoveAsync(item.TaskId, Token);
        var server = redis.Redis.GetServers().First(s => !s.IsReplica);
        await foreach (var key in server.KeysAsync(pattern: "{" + prefix + "}:*"))
        {
            await redis.Redis.GetDatabase().KeyDeleteAsync(key);
        }
    }

    [Fact]
    public async Task AddRunboxQueue_InvalidOptions_RefusedOnResolve()
    {
        await using var provider = new ServiceCollection()
            .AddLogging()
            .AddRunboxQueue(o =>
            {
                o.ConnectionString = redis.ConnectionString;
                o.LeaseDuration = TimeSpan.Zero;
            })
            .BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ITaskQueue>());
        Assert.Contains(nameof(QueueOptions.LeaseDuration), error.Message, StringComparison.Ordinal);
    }
}
