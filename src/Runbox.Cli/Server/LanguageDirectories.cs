using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Api;
using Runbox.Api.Endpoints;
using Runbox.Core.Seams;
using Runbox.Queue;
using StackExchange.Redis;

namespace Runbox.Cli.Server;

/// <summary>In a process that runs tasks, the languages are the local sandbox's.</summary>
internal sealed class SandboxLanguageDirectory(ISandbox sandbox) : ILanguageDirectory
{
    public Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken) => Task.FromResult(sandbox.Languages);
}

/// <summary>
/// Workers announce their languages in Redis, so an API process on a machine without toolchains
/// offers exactly what the workers can run. The set is the union over workers that announced.
/// </summary>
internal sealed class RedisLanguageDirectory(IConnectionMultiplexer redis, IOptions<QueueOptions> options, TimeProvider time) : ILanguageDirectory
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);
    private IReadOnlyList<LanguageInfo> _cached = [];
    private long _cachedAt;

    public static RedisKey Key(QueueOptions options) => $"{options.KeyPrefix}:languages";

    public async Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken)
    {
        if (_cached.Count > 0 && time.GetElapsedTime(_cachedAt) < CacheFor)
        {
            return _cached;
        }
        var entries = await redis.GetDatabase().HashValuesAsync(Key(options.Value)).WaitAsync(cancellationToken);
        _cached = entries
            .SelectMany(e => JsonSerializer.Deserialize<List<LanguageInfo>>(e.ToString()) ?? [])
            .GroupBy(l => l.Id, StringComparer.Ordinal)
            .Select(g => g.First())
            .OrderBy(l => l.Id, StringComparer.Ordinal)
            .ToList();
        _cachedAt = time.GetTimestamp();
        return _cached;
    }
}

/// <summary>
/// Publishes this worker's languages for <see cref="RedisLanguageDirectory"/>: before the worker serves,
/// then again every <see cref="AnnounceInterval"/>, because Redis may lose them (flushed, restarted
/// without its data) and an API that finds no languages refuses every task as an unknown language.
/// </summary>
/// <remarks>Registered after the sandbox, whose own start (hosted services start in order) finds the toolchains.</remarks>
internal sealed class LanguageAnnouncer(
    IConnectionMultiplexer redis,
    ISandbox sandbox,
    IOptions<QueueOptions> options,
    TimeProvider time,
    ILogger<LanguageAnnouncer> logger) : BackgroundService
{
    public static readonly TimeSpan AnnounceInterval = TimeSpan.FromSeconds(5);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await AnnounceAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(AnnounceInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await AnnounceAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                Log.LanguagesNotAnnounced(logger, exception);
            }
        }
    }

    private Task AnnounceAsync(CancellationToken cancellationToken) =>
        redis.GetDatabase().HashSetAsync(RedisLanguageDirectory.Key(options.Value), Environment.MachineName, JsonSerializer.Serialize(sandbox.Languages)).WaitAsync(cancellationToken);
}
internal sealed class SandboxReadinessCheck(ISandbox sandbox) : IReadinessCheck
{
    public string Name => "sandbox";

    public Task<string?> CheckAsync(CancellationToken cancellationToken) =>
        Task.FromResult(sandbox.Languages.Count > 0 ? null : "no language toolchain is available to the sandbox");
}
