using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Runbox.Queue.Tests;

public sealed class LocalRedisServerTests : IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), "rbq-" + Guid.NewGuid().ToString("N")[..12]);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StartAsync_FreshDirectory_AnswersWithNoevictionAndAof()
    {
        await using var server = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString + ",allowAdmin=true");

        Assert.Equal("PONG", (string?)await redis.GetDatabase().ExecuteAsync("PING"));
        Assert.Equal(RedisHealth.RequiredPolicy, await RedisHealth.CheckEvictionPolicyAsync(redis, NullLogger.Instance, Token));
        var persistence = (await redis.GetServers()[0].InfoAsync("persistence")).SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("1", persistence["aof_enabled"]);
    }

    [Fact]
    public async Task DisposeAsync_Running_LeavesNoProcess()
    {
        var server = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token);
        var pid = server.ProcessId;

        await server.DisposeAsync();

        Assert.False(IsAlive(pid));
    }

    [Fact]
    public async Task Killed_StartedAgainOnTheSamePort_WithItsData()
    {
        var server = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString + ",abortConnect=false");
        await redis.GetDatabase().StringSetAsync("kept", "yes");
        var first = server.ProcessId;

        using (var victim = Process.GetProcessById(first))
        {
            victim.Kill();
        }

        var waited = Stopwatch.StartNew();
        string? kept = null;
        while (kept is null)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), $"the killed redis-server was not started again (restarts: {server.Restarts})");
            try
            {
                kept = await redis.GetDatabase().StringGetAsync("kept");
            }
            catch (RedisConnectionException)
            {
                await Task.Delay(100, Token);
            }
        }
        Assert.Equal("yes", kept);
        Assert.Equal(1, server.Restarts);
        Assert.NotEqual(first, server.ProcessId);
        Assert.False(IsAlive(first));

        var second = server.ProcessId;
        await server.DisposeAsync();
        Assert.False(IsAlive(second));
    }

    [Fact]
    public async Task StartAsync_SameDirectoryAfterRestart_KeepsDataFromAof()
    {
        await using (var first = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token))
        {
            await using var redis = await ConnectionMultiplexer.ConnectAsync(first.ConnectionString);
            await redis.GetDatabase().StringSetAsync("kept", "yes");
        }

        await using var second = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token);
        await using var again = await ConnectionMultiplexer.ConnectAsync(second.ConnectionString);

        Assert.Equal("yes", (string?)await again.GetDatabase().StringGetAsync("kept"));
    }

    [Fact]
    public async Task StartAsync_LeftoverFromCrashedRun_StopsItFirst()
    {
        // A crashed run: its redis-server lives on (reparented, as a daemon is) with the pidfile in the folder.
        Directory.CreateDirectory(directory);
        var pidFile = Path.Combine(directory, LocalRedisServer.PidFileName);
        string[] arguments = ["--port", "0", "--unixsocket", Path.Combine(directory, "crashed.sock"), "--daemonize", "yes", "--save", "", "--dir", directory, "--pidfile", pidFile];
        using (var daemon = Process.Start("redis-server", arguments))
        {
            await daemon.WaitForExitAsync(Token);
        }
        var waited = Stopwatch.StartNew();
        while (!File.Exists(pidFile) || !int.TryParse(await File.ReadAllTextAsync(pidFile, Token), out _))
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), "the stand-in for a crashed run's redis-server did not start");
            await Task.Delay(20, Token);
        }
        var leftover = int.Parse(await File.ReadAllTextAsync(pidFile, Token), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(IsAlive(leftover));

        await using var fresh = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token);

        Assert.False(IsAlive(leftover));
        Assert.NotEqual(leftover, fresh.ProcessId);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(fresh.ConnectionString);
        Assert.Equal("PONG", (string?)await redis.GetDatabase().ExecuteAsync("PING"));
    }

    [Fact]
    public async Task StartAsync_NoRedisServerOnPath_FailsTellingHowToInstall()
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        Environment.SetEnvironmentVariable("PATH", directory);
        try
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token));
            Assert.Contains("apt-get install redis-server", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
        }
    }

    [Fact]
    public async Task CheckEvictionPolicy_EvictingPolicy_Warns()
    {
        await using var server = await LocalRedisServer.StartAsync(directory, NullLogger.Instance, Token);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString + ",allowAdmin=true");
        await redis.GetServers()[0].ConfigSetAsync("maxmemory-policy", "allkeys-lru");
        var logger = new ListLogger();

        Assert.Equal("allkeys-lru", await RedisHealth.CheckEvictionPolicyAsync(redis, logger, Token));

        Assert.Contains(logger.Messages, m => m.Level == LogLevel.Warning && m.Text.Contains("allkeys-lru", StringComparison.Ordinal));
    }

    [Fact]
    public void QueueOptions_KeyPrefixWithBraces_Invalid()
    {
        var options = new QueueOptions { ConnectionString = "localhost" };

        Assert.True(Validator.TryValidateObject(options, new ValidationContext(options), [], validateAllProperties: true));
        options.KeyPrefix = "bad{tag}";
        Assert.False(Validator.TryValidateObject(options, new ValidationContext(options), [], validateAllProperties: true));
    }

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static bool IsAlive(int pid) => LocalRedisServer.IsLiveRedisServer(pid);

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Text)> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add((logLevel, formatter(state, exception)));
    }
}
