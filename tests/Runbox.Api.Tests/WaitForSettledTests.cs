using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
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

namespace Runbox.EndToEnd.Tests;

/// <summary>
/// How a <c>?wait=true</c> submit learns that its task has settled: from the live events, with the store as
/// the answer. In process, on the real SQLite store and the real Redis events, so that a task can settle in
/// the store without its event (a publisher that died in between).
/// </summary>
public sealed class WaitForSettledTests : IAsyncLifetime
{
    private static readonly TimeSpan LongWait = TimeSpan.FromSeconds(30);

    private readonly string _folder = TestEnvironment.NewDataDirectory();
    private ConnectionMultiplexer? _redis;
    private SqliteTaskStore? _store;
    private RedisTaskEvents? _events;
    private TaskService? _service;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis);
        var queueOptions = Options.Create(new QueueOptions { KeyPrefix = "wait-" + Guid.NewGuid().ToString("N") });
        _store = new SqliteTaskStore(Path.Combine(_folder, "runbox.db"), new StoreOptions(), TimeProvider.System);
        _events = new RedisTaskEvents(_redis, queueOptions, TimeProvider.System, NullLogger<RedisTaskEvents>.Instance);
        var lifecycle = new TaskLifecycle(
            _store,
            new RedisTaskQueue(_redis, queueOptions, TimeProvider.System, NullLogger<RedisTaskQueue>.Instance),
            _events,
            new RunboxMetrics(),
            Options.Create(new LifecycleOptions()),
            TimeProvider.System,
            NullLogger<TaskLifecycle>.Instance);
        _service = new TaskService(_store, _events, lifecycle, new NoLanguages(), LimitPolicy.Default, TimeProvider.System);
    }

    public async ValueTask DisposeAsync()
    {
        await _events!.DisposeAsync();
        await _store!.DisposeAsync();
        await _redis!.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task WaitForSettled_CompletedEventPublished_ReturnsTheStoredResult()
    {
        var (settled, took) = await WaitWhileItCompletesAsync(publish: true);

        Assert.Equal(TaskStatus.Completed, settled!.Status);
        // Well inside the store recheck interval (5 s): the event, not the recheck, ended the wait.
        Assert.True(took < TimeSpan.FromSeconds(4), $"took {took}");
    }

    [Fact]
    public async Task WaitForSettled_CompletedWithoutItsEvent_ReturnsAtTheStoreRecheck()
    {
        var (settled, took) = await WaitWhileItCompletesAsync(publish: false);

        Assert.Equal(TaskStatus.Completed, settled!.Status);
        // Not the wait's own timeout (30 s): the periodic store read found it.
        Assert.True(took < TimeSpan.FromSeconds(15), $"took {took}");
    }

    /// <summary>Starts a wait on a pending task, then completes the task in the store (and announces it, or not).</summary>
    private async Task<(TaskRecord? Settled, TimeSpan Took)> WaitWhileItCompletesAsync(bool publish)
    {
        var task = await CreatePendingAsync();
        var clock = Stopwatch.StartNew();
        var waiting = _service!.WaitForSettledAsync(task.Id, LongWait, Ct);
        await Task.Delay(300, Ct);

        await CompleteInStoreAsync(task, publish);

        return (await waiting, clock.Elapsed);
    }

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
