using StackExchange.Redis;

[assembly: AssemblyFixture(typeof(Runbox.Queue.Tests.RedisFixture))]

namespace Runbox.Queue.Tests;

/// <summary>
/// The real redis-server every test runs against (scripts/test starts it). Without it the tests
/// fail loudly: a missing dependency is never a silent skip.
/// </summary>
public sealed class RedisFixture : IAsyncLifetime
{
    public const string Variable = "RUNBOX_TEST_REDIS";

    private ConnectionMultiplexer? redis;

    public string ConnectionString { get; } = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException(
            $"{Variable} is not set. Start a redis-server (e.g. redis-server --port 6391 --save \"\" --daemonize yes) " +
            $"and set {Variable}=127.0.0.1:6391, or run scripts/test, which does both.");

    public IConnectionMultiplexer Redis => redis ?? throw new InvalidOperationException("The fixture is not initialized.");

    public async ValueTask InitializeAsync() => redis = await ConnectionMultiplexer.ConnectAsync(ConnectionString);

    public async ValueTask DisposeAsync()
    {
        if (redis is not null)
        {
            await redis.DisposeAsync();
        }
    }
}
