using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Runbox.Core.Metrics;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Lifecycle;
using Runbox.Queue;
using Runbox.Store;
using Runbox.Store.Sqlite;
using StackExchange.Redis;

[assembly: AssemblyFixture(typeof(Runbox.Worker.Tests.RedisFixture))]

namespace Runbox.Worker.Tests;

/// <summary>The real redis-server scripts/test starts; without it every test fails with the reason.</summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private const string Variable = "RUNBOX_TEST_REDIS";
    private ConnectionMultiplexer? _redis;

    public IConnectionMultiplexer Redis => _redis ?? throw new InvalidOperationException("The fixture is not initialized.");

    public async ValueTask InitializeAsync() => _redis = await ConnectionMultiplexer.ConnectAsync(
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{Variable} is not set: run the tests through scripts/test, which starts redis-server."));

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}

/// <summary>
/// The lifecycle engine on real parts, in process: a real Redis (a key prefix of its own) and a real SQLite
/// store in a folder of its own, with one fake clock for both, so leases expire and backoffs pass without
/// waiting.
/// </summary>
public sealed class LifecycleHarness : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly string _folder = Directory.CreateTempSubdirectory("runbox-lifecycle-").FullName;

    private LifecycleHarness(IConnectionMultiplexer redis, LifecycleOptions lifecycle)
    {
        QueueOptions = new QueueOptions { ConnectionString = redis.Configuration, KeyPrefix = "lifecycle-" + Guid.NewGuid().ToString("N") };
        Queue = new RedisTaskQueue(redis, Options.Create(QueueOptions), Time, NullLogger<RedisTaskQueue>.Instance);
        Events = new RedisTaskEvents(redis, Options.Create(QueueOptions), Time, NullLogger<RedisTaskEvents>.Instance);
        Store = new SqliteTaskStore(Path.Combine(_folder, "runbox.db"), new StoreOptions(), Time);
        LifecycleOptions = lifecycle;
        Lifecycle = new TaskLifecycle(Store, Queue, Events, Metrics, Options.Create(lifecycle), Time, NullLogger<TaskLifecycle>.Instance);
    }

    public FakeTimeProvider Time { get; } = new(Start);
    public QueueOptions QueueOptions { get; }
    public LifecycleOptions LifecycleOptions { get; }
    public RedisTaskQueue Queue { get; }
    public RedisTaskEvents Events { get; }
    public SqliteTaskStore Store { get; }
    public RunboxMetrics Metrics { get; } = new();
    public TaskLifecycle Lifecycle { get; }

    public static async Task<LifecycleHarness> StartAsync(IConnectionMultiplexer redis, LifecycleOptions? lifecycle = null)
    {
        var harness = new LifecycleHarness(redis, lifecycle ?? new LifecycleOptions());
        await harness.Store.MigrateAsync(TestContext.Current.CancellationToken);
        return harness;
    }

    /// <summary>A spec with a retry policy without jitter, so backoffs are exact.</summary>
    public static TaskSpec Spec(string user = "alice", int maxAttempts = 3, params FailureKind[] retryOn) => new()
    {
        User = user,
        Language = "python",
        Source = "print(1)",
        Retry = RetryPolicy.Default with
        {
            MaxAttempts = maxAttempts,
            Jitter = 0,
            Base = TimeSpan.FromSeconds(10),
            On = retryOn.Length > 0 ? retryOn.ToHashSet() : new HashSet<FailureKind> { FailureKind.Infrastructure, FailureKind.Timeout },
        },
    };

    public async Task<TaskRecord> SubmitAsync(TaskSpec? spec = null) =>
        (await Lifecycle.SubmitAsync(new NewTask(spec ?? Spec()), TestContext.Current.CancellationToken)).Task;

    public async Task<Lease> ClaimAsync(string worker = "w1") =>
        Assert.Single(await Queue.ClaimAsync(worker, 1, TestContext.Current.CancellationToken));

    /// <summary>Claims the next task and starts its attempt in the store, as a worker does.</summary>
    public async Task<(Lease Lease, TaskRecord Task)> StartAsync(string worker = "w1")
    {
        var lease = await ClaimAsync(worker);
        var task = await Lifecycle.StartAsync(lease, worker, TestContext.Current.CancellationToken);
        return (lease, task ?? throw new InvalidOperationException("the claimed task did not start"));
    }

    public Task<TaskRecord?> GetAsync(Guid id) => Store.GetAsync(id, TestContext.Current.CancellationToken);

    public Task<QueuedTaskState?> QueuedAsync(Guid id) => Queue.GetStateAsync(id, TestContext.Current.CancellationToken);

    /// <summary>The statuses announced on the task's event stream, in order.</summary>
    public async Task<List<string>> AnnouncedAsync(Guid id) =>
        (await Events.ReadAsync(id, null, TimeSpan.Zero, TestContext.Current.CancellationToken)).Where(e => e.Kind == "status").Select(e => e.Data).ToList();

    /// <summary>The transitions counted, by target status, as /metrics shows them.</summary>
    public Dictionary<string, long> Counted()
    {
        var text = Metrics.Render([]);
        return text.Split('\n')
            .Where(l => l.StartsWith("runbox_task_transitions_total{", StringComparison.Ordinal))
            .ToDictionary(l => l[(l.IndexOf('"', StringComparison.Ordinal) + 1)..l.LastIndexOf('"')], l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Moves the clock past every lease and its grace, so the reaper takes them.</summary>
    public void ExpireLeases() => Time.Advance(QueueOptions.LeaseDuration + QueueOptions.ReapGrace + TimeSpan.FromSeconds(1));

    public async ValueTask DisposeAsync()
    {
        await Queue.DisposeAsync();
        await Events.DisposeAsync();
        await Store.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
