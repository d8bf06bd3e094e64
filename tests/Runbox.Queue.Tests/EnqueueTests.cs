using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Queue.Tests;

public sealed class EnqueueTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Enqueue_SameTaskTwice_QueuedOnce()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");

        await h.Queue.EnqueueAsync(item, Token);

        Assert.Equal(1, (await h.Queue.GetStatsAsync(Token)).ReadyByPriority[5]);
        await h.ClaimOneAsync();
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
    }

    [Fact]
    public async Task EnqueueMany_BatchWithRepeatAndRunningTask_QueuesEachNewTaskOnceInOrder()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 10);
        var running = await h.EnqueueAsync("alice", 9);
        var lease = await h.ClaimOneAsync();
        var items = Enumerable.Range(0, 5).Select(i => QueueHarness.Item("u" + (i % 2), i)).ToList();

        await h.Queue.EnqueueManyAsync([.. items, items[0], running], Token);

        var claimed = await h.Queue.ClaimAsync("w", 10, Token);
        Assert.Equal(items.OrderByDescending(i => i.Priority).Select(i => i.TaskId), claimed.Select(l => l.TaskId));
        Assert.Equal(LeaseState.Ok, Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token)).State);
    }

    [Fact]
    public async Task Enqueue_TaskRunning_LeftAsItIs()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();

        await h.Queue.EnqueueAsync(item, Token);

        Assert.Equal(LeaseState.Ok, Assert.Single(await h.Queue.HeartbeatAsync("w1", [lease], Token)).State);
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
    }

    [Fact]
    public async Task Enqueue_FenceFloorAboveQueueFence_NextClaimAboveFloor()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice", change: i => i with { Fence = 41 });

        Assert.Equal(42, (await h.ClaimOneAsync()).Fence);
    }

    [Fact]
    public async Task Enqueue_RebuiltWithLowerFence_KeepsHigherFence()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Failed, TaskStatus.Failed), Token);

        // A manual retry re-enqueues from a store that lags behind (fence 0).
        await h.Queue.EnqueueAsync(item, Token);

        Assert.Equal(lease.Fence + 1, (await h.ClaimOneAsync()).Fence);
    }

    [Fact]
    public async Task Claim_AfterScriptFlush_ScriptsReloadedAndWork()
    {
        await using var h = new QueueHarness(redis.Redis);
        await h.EnqueueAsync("alice");
        await using (var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true"))
        {
            await admin.GetServers().First(s => !s.IsReplica).ScriptFlushAsync();
        }

        Assert.Equal("alice", (await h.ClaimOneAsync()).User);
    }

    [Fact]
    public async Task GetStats_MixedQueue_CountsEachPlace()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 10);
        await h.EnqueueAsync("alice", 9);
        await h.EnqueueAsync("alice", 9);
        await h.EnqueueAsync("bob", 2);
        await h.EnqueueAsync("bob", 2, i => i with { RunAt = QueueHarness.Start.AddHours(1) });
        h.Time.Advance(TimeSpan.FromSeconds(3));
        await h.EnqueueAsync("carol", 0);
        // A capped user's waiting task is counted too, though the user is not eligible.
        await h.Queue.SetUserLimitAsync("dave", 0, Token);
        await h.EnqueueAsync("dave", 4);
        await h.ClaimOneAsync();

        var stats = await h.Queue.GetStatsAsync(Token);

        Assert.Equal(new Dictionary<int, long> { [9] = 1, [4] = 1, [2] = 1, [0] = 1 }, stats.ReadyByPriority);
        Assert.Equal((1, 1, 0), (stats.Delayed, stats.Running, stats.DeadLettered));
        Assert.Equal(TimeSpan.FromSeconds(3), stats.OldestPendingAge);
    }

    [Fact]
    public async Task ListWorkers_WorkerStopsRegistering_DisappearsAfterTtl()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.WorkerTtl = TimeSpan.FromSeconds(30));
        var python = new LanguageInfo("python", "Python 3", "3.11.2", "main.py", Compiled: false);
        await h.Queue.RegisterWorkerAsync(new WorkerInfo("w1", "host-a", 8, 3, QueueHarness.Start, "1.0") { Languages = [python] }, Token);
        h.Time.Advance(TimeSpan.FromSeconds(20));
        await h.Queue.RegisterWorkerAsync(new WorkerInfo("w2", "host-b", 4, 0, QueueHarness.Start, "1.0"), Token);

        var both = await h.Queue.ListWorkersAsync(Token);
        var first = both.Single(w => w.Id == "w1");
        Assert.Equal(("host-a", 8, 3, QueueHarness.Start, "1.0"), (first.Host, first.Slots, first.Busy, first.LastHeartbeat, first.Version));
        // The languages a worker offers travel with its registration, and go with it.
        Assert.Equal([python], first.Languages);
        Assert.Empty(both.Single(w => w.Id == "w2").Languages);

        h.Time.Advance(TimeSpan.FromSeconds(15));
        var live = Assert.Single(await h.Queue.ListWorkersAsync(Token));
        Assert.Equal(("w2", QueueHarness.Start.AddSeconds(20)), (live.Id, live.LastHeartbeat));
    }
}
