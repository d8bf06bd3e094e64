using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Runbox.Api;
using Runbox.Lifecycle;
using Runbox.Core.Limits;
using Runbox.Core.Metrics;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Queue;
using Runbox.Store;
using Runbox.Store.Sqlite;
using StackExchange.Redis;

namespace Runbox.Api.Tests;

/// <summary>
/// How a <c>?wait=true</c> submit learns that its task has settled: from the live events, with the store as
/// the answer. In process, on the real SQLite store and the real Redis events, so that a task can settle in
/// the store without its event (a publisher that died in between), and on a fake clock, so what ends a wait
/// is told apart without measuring time.
/// </summary>
public sealed class WaitForSettledTests : IAsyncLifetime
{
    private static readonly TimeSpan LongWait = TimeSpan.FromSeconds(30);

    private readonly string _folder = Directory.CreateTempSubdirectory("runbox-wait-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
    private ConnectionMultiplexer? _redis;
    private SqliteTaskStore? _store;
    private RedisTaskEvents? _events;
    private TaskService? _service;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(Environment.GetEnvironmentVariable("RUNBOX_TEST_REDIS") is { Length: > 0 } redis
            ? redis
            : throw new InvalidOperationException("RUNBOX_TEST_REDIS is not set: run the tests through scripts/test, which starts redis-server."));
        var queueOptions = Options.Create(new QueueOptions { KeyPrefix = "wait-" + Guid.NewGuid().ToString("N") });
        _store = new SqliteTaskStore(Path.Combine(_folder, "runbox.db"), new StoreOptions(), _time);
        _events = new RedisTaskEvents(_redis, queueOptions, _time, NullLogger<RedisTaskEvents>.Instance);
        var lifecycle = new TaskLifecycle(
            _store,
            new RedisTaskQueue(_redis, queueOptions, _time, NullLogger<RedisTaskQueue>.Instance),
            _events,
            new RunboxMetrics(),
            Options.Create(new LifecycleOptions()),
            _time,
            NullLogger<TaskLifecycle>.Instance);
        _service = new TaskService(_store, _events, lifecycle, new NoLanguages(), LimitPolicy.Default, _time);
    }

    public async ValueTask DisposeAsync()
    {
        await _events!.DisposeAsync();
        await _store!.DisposeAsync();
        await _redis!.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task WaitForSettled_CompletedEventPublished_TheEventEndsTheWaitWithTheStoredResult()
    {
        var task = await CreatePendingAsync();
        var waiting = _service!.WaitForSettledAsync(task.Id, LongWait, Ct);

        await CompleteInStoreAsync(task, publish: true);
        // Not a moment passes on the clock: no store recheck and no timeout can have ended it.
        var settled = await waiting.WaitAsync(Patience, Ct);

        Assert.Equal(TaskStatus.Completed, settled!.Status);
    }

    [Fact]
    public async Task WaitForSettled_CompletedWithoutItsEvent_TheStoreRecheckEndsTheWaitNotItsTimeout()
    {
        var task = await CreatePendingAsync();
        var waiting = _service!.WaitForSettledAsync(task.Id, LongWait, Ct);
        await CompleteInStoreAsync(task, publish: false);

        // The clock moves a second at a time until the wait ends; the store recheck (every 5 s) must end it
        // long before its own timeout (30 s).
        var advanced = TimeSpan.Zero;
        while (!waiting.IsCompleted && advanced < LongWait)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            advanced += TimeSpan.FromSeconds(1);
            await Task.WhenAny(waiting, Task.Delay(100, Ct));
        }

        Assert.Equal(TaskStatus.Completed, (await waiting)!.Status);
        Assert.InRange(advanced, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
    }

    /// <summary>How long a test waits for what happens without the fake clock moving (a hang guard, not a measurement).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private async Task<TaskRecord> CreatePendingAsync()
    {
        var spec = new TaskSpec { User = "alice", Language = "python", Source = "print(1)" };
        return (await _store!.CreateAsync(new NewTask(spec), Ct)).Task;
    }

    private async Task CompleteInStoreAsync(TaskRecord task, bool publish)
    {
        var running = await _store!.TransitionAsync([new TransitionRequest(task.Id, TaskStatus.Pending, TaskStatus.Running, "claimed") { Fence = 1 }], Ct);
        // A status that cannot be the last: the wait follows on without settling.
        await _events!.PublishStatusesAsync(task.Id, running.Task!.Attempt, [TaskStatus.Running], Ct);
        var done = await _store.TransitionAsync([new TransitionRequest(task.Id, TaskStatus.Running, TaskStatus.Completed, "finished") { Fence = 1 }], Ct);
        Assert.True(done.Succeeded);
        if (publish)
        {
            await _events!.PublishStatusesAsync(task.Id, done.Task!.Attempt, [TaskStatus.Completed], Ct);
        }
    }

    private sealed class NoLanguages : ILanguageDirectory
    {
        public Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<LanguageInfo>>([]);
    }
}
