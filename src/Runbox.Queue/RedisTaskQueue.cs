using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using StackExchange.Redis;

namespace Runbox.Queue;

/// <summary>
/// <see cref="ITaskQueue"/> on Redis: every operation is one idempotent Lua script (Lua/*.lua) over
/// keys that share one hash tag. The data model follows research/queue-anchors.md §(d): per-user
/// ready sorted sets, an <c>eligible</c> index of users under their limit, a running counter per user
/// changed only inside fenced scripts, a lease sorted set, delayed and dead-letter sets, a wake-up
/// marker and a capped transitions stream. Scripts get the time from the injected
/// <see cref="TimeProvider"/>, never from Redis.
/// </summary>
public sealed class RedisTaskQueue : ITaskQueue, IAsyncDisposable
{
    private const int CommonArgs = 5;

    private static readonly JsonSerializerOptions LanguagesJson = new(JsonSerializerDefaults.Web);
    private const int FreshTaskArgCount = 8;

    private static readonly string[] Scripts =
    [
        "enqueue", "claim", "heartbeat", "finish", "cancel", "reap", "requeue", "remove", "state",
        "restore", "recount", "set_user_limit", "stats", "register_worker", "list_workers", "lead",
    ];

    private readonly IConnectionMultiplexer redis;
    private readonly QueueOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly QueueKeys keys;
    private readonly RedisScripts scripts;
    private readonly MarkerWaiter waiter;

    public RedisTaskQueue(IConnectionMultiplexer redis, IOptions<QueueOptions> options, TimeProvider time, ILogger<RedisTaskQueue> logger)
    {
        this.redis = redis;
        this.options = options.Value;
        this.time = time;
        this.logger = logger;
        keys = new QueueKeys(this.options.KeyPrefix);
        scripts = new RedisScripts(redis, logger, Scripts, []);
        waiter = new MarkerWaiter(ConnectBlockingAsync, keys.Marker, time, logger);
    }

    public async Task EnqueueAsync(QueueItem item, CancellationToken cancellationToken) =>
        await RunAsync("enqueue", Args(FreshTaskArgs(item)), cancellationToken);

    public async Task EnqueueManyAsync(IReadOnlyList<QueueItem> items, CancellationToken cancellationToken)
    {
        if (items.Count == 0)
        {
            return;
        }
        var rest = new RedisValue[items.Count * FreshTaskArgCount];
        for (var i = 0; i < items.Count; i++)
        {
            FreshTaskArgs(items[i]).CopyTo(rest, i * FreshTaskArgCount);
        }
        await RunAsync("enqueue", Args(rest), cancellationToken);
    }

    public async Task<bool> RequeueDeadLetterAsync(QueueItem item, CancellationToken cancellationToken) =>
        (long)await RunAsync("requeue", Args(FreshTaskArgs(item)), cancellationToken) == 1;

    public async Task<IReadOnlyList<Lease>> ClaimAsync(string workerId, int max, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(workerId);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var result = (RedisResult[])(await RunAsync("claim", Args(workerId, max, Milliseconds(options.LeaseDuration), options.PromoteBatch), cancellationToken))!;
        var leases = new List<Lease>(result.Length / 5);
        for (var i = 0; i < result.Length; i += 5)
        {
            leases.Add(new Lease(
                Guid.Parse((string)result[i]!),
                (string)result[i + 1]!,
                (long)result[i + 2],
                (int)result[i + 3],
                FromMilliseconds((long)result[i + 4])));
        }
        return leases;
    }

    public Task WaitForWorkAsync(TimeSpan maxWait, CancellationToken cancellationToken) =>
        waiter.WaitAsync(maxWait, cancellationToken);

    public async Task<IReadOnlyList<LeaseStatus>> HeartbeatAsync(string workerId, IReadOnlyList<Lease> leases, CancellationToken cancellationToken)
    {
        if (leases.Count == 0)
        {
            return [];
        }
        var rest = new RedisValue[1 + (2 * leases.Count)];
        rest[0] = Milliseconds(options.LeaseDuration);
        for (var i = 0; i < leases.Count; i++)
        {
            rest[1 + (2 * i)] = leases[i].TaskId.ToString("D");
            rest[2 + (2 * i)] = leases[i].Fence;
        }
        var codes = (long[])(await RunAsync("heartbeat", Args(rest), cancellationToken))!;
        var statuses = new LeaseStatus[leases.Count];
        for (var i = 0; i < leases.Count; i++)
        {
            statuses[i] = new LeaseStatus(leases[i].TaskId, codes[i] switch
            {
                0 => LeaseState.Ok,
                1 => LeaseState.Lost,
                2 => LeaseState.CancelRequested,
                3 => LeaseState.PastDeadline,
                _ => throw new InvalidOperationException($"Unknown heartbeat code {codes[i]}."),
            });
        }
        return statuses;
    }

    public async Task<bool> FinishAsync(Lease lease, AttemptOutcome outcome, CancellationToken cancellationToken)
    {
        var kind = OutcomeName(outcome);
        var retryAt = outcome.RetryAt is { } at ? at.ToUnixTimeMilliseconds() : 0;
        var result = (long[])(await RunAsync(
            "finish",
            Args(lease.TaskId.ToString("D"), lease.Fence, kind, outcome.Status.ToWire(), retryAt, options.DeadLetterCap),
            cancellationToken))!;
        if (result[0] == 0)
        {
            Log.StaleFinish(logger, lease.TaskId, lease.Fence, kind);
            return false;
        }
        ReportTrimmed(result[1]);
        return true;
    }

    public async Task<CancelResult> CancelAsync(Guid taskId, CancellationToken cancellationToken)
    {
        var code = (long)await RunAsync("cancel", Args(taskId.ToString("D"), keys.CancelChannel.ToString()), cancellationToken);
        return code switch
        {
            0 => CancelResult.NotFound,
            1 => CancelResult.RemovedPending,
            2 => CancelResult.FlaggedRunning,
            3 => CancelResult.AlreadyFinished,
            _ => throw new InvalidOperationException($"Unknown cancel code {code}."),
        };
    }

    public async Task<IReadOnlyList<ReapedTask>> ReapAsync(int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var result = (RedisResult[])(await RunAsync("reap", Args(Milliseconds(options.ReapGrace), max, Milliseconds(options.LeaseDuration)), cancellationToken))!;
        var reaped = new List<ReapedTask>(result.Length / 7);
        for (var i = 0; i < result.Length; i += 7)
        {
            var task = new ReapedTask(
                Guid.Parse((string)result[i]!),
                (string)result[i + 1]!,
                (long)result[i + 2],
                (int)result[i + 3],
                (int)result[i + 4],
                CancelRequested: (long)result[i + 5] == 1,
                PastDeadline: (long)result[i + 6] == 1);
            Log.Reaped(logger, task.TaskId, task.User, task.NewFence, task.Attempt, task.Stalls);
            reaped.Add(task);
        }
        return reaped;
    }

    public async Task RemoveAsync(Guid taskId, CancellationToken cancellationToken) =>
        await RunAsync("remove", Args(taskId.ToString("D")), cancellationToken);

    public async Task<QueuedTaskState?> GetStateAsync(Guid taskId, CancellationToken cancellationToken)
    {
        var result = await RunAsync("state", Args(taskId.ToString("D")), cancellationToken);
        if (result.IsNull)
        {
            return null;
        }
        var fields = (RedisValue[])result!;
        return new QueuedTaskState(taskId, fields[0]!, (long)fields[1], (int)fields[2], fields[3] == "1");
    }

    public async Task<QueueRestore> RestoreAsync(QueueItem item, bool running, CancellationToken cancellationToken) =>
        (long)await RunAsync("restore", Args([running ? "running" : "pending", .. FreshTaskArgs(item)]), cancellationToken) switch
        {
            0 => QueueRestore.Intact,
            1 => QueueRestore.Restored,
            _ => QueueRestore.Lost,
        };

    public async Task<int> RecountRunningAsync(CancellationToken cancellationToken) =>
        (int)await RunAsync("recount", Args(), cancellationToken);

    public async Task<bool> SetUserLimitAsync(string user, int? limit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(user);
        if (limit is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "A concurrency limit is zero or more.");
        }
        return (long)await RunAsync("set_user_limit", Args(user, limit is { } value ? value : RedisValue.EmptyString), cancellationToken) == 1;
    }

    public async Task<QueueStats> GetStatsAsync(CancellationToken cancellationToken)
    {
        var result = (RedisResult[])(await RunAsync("stats", Args(), cancellationToken))!;
        var counts = (long[])result[0]!;
        var ready = new Dictionary<int, long>();
        for (var i = 0; i < counts.Length; i += 2)
        {
            ready[(int)counts[i]] = ready.GetValueOrDefault((int)counts[i]) + counts[i + 1];
        }
        var oldest = (RedisValue)result[5];
        return new QueueStats
        {
            ReadyByPriority = ready,
            Delayed = (long)result[1],
            Running = (long)result[2],
            DeadLettered = (long)result[3],
            DeadLetterTrimmed = (long)result[4],
            OldestPendingAge = oldest.IsNullOrEmpty ? null : time.GetUtcNow() - FromMilliseconds((long)oldest),
        };
    }

    public async Task SubscribeCancellationsAsync(Func<Guid, Task> onCancel, CancellationToken cancellationToken)
    {
        var subscriber = redis.GetSubscriber();
        Action<RedisChannel, RedisValue> handler = (channel, message) =>
        {
            if (!Guid.TryParse((string?)message, out var taskId))
            {
                Log.MalformedMessage(logger, channel.ToString());
                return;
            }
            _ = InvokeAsync(onCancel, taskId);
        };
        try
        {
            await subscriber.SubscribeAsync(keys.CancelChannel, handler).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The caller gave up while subscribing: the subscription may still have been made.
            subscriber.Unsubscribe(keys.CancelChannel, handler, CommandFlags.FireAndForget);
            throw;
        }
        cancellationToken.Register(() => subscriber.Unsubscribe(keys.CancelChannel, handler, CommandFlags.FireAndForget));
    }

    public async Task RegisterWorkerAsync(WorkerInfo worker, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(worker.Id);
        await RunAsync("register_worker", Args(worker.Id, Milliseconds(options.WorkerTtl), worker.Host, worker.Slots, worker.Busy, worker.Version,
            JsonSerializer.Serialize(worker.Languages, LanguagesJson)), cancellationToken);
    }

    public async Task<bool> TryLeadMaintenanceAsync(string candidate, TimeSpan term, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(candidate);
        return (long)await RunAsync("lead", Args(candidate, Milliseconds(term), 0), cancellationToken) == 1;
    }

    public async Task ReleaseMaintenanceAsync(string candidate, CancellationToken cancellationToken) =>
        await RunAsync("lead", Args(candidate, 0, 1), cancellationToken);

    public async Task<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken)
    {
        var result = (RedisValue[])(await RunAsync("list_workers", Args(), cancellationToken))!;
        var workers = new List<WorkerInfo>(result.Length / 7);
        for (var i = 0; i < result.Length; i += 7)
        {
            workers.Add(new WorkerInfo(result[i]!, result[i + 1]!, (int)result[i + 2], (int)result[i + 3], FromMilliseconds((long)result[i + 4]), result[i + 5]!)
            {
                Languages = result[i + 6].IsNullOrEmpty ? [] : JsonSerializer.Deserialize<List<LanguageInfo>>(result[i + 6].ToString(), LanguagesJson) ?? [],
            });
        }
        return workers;
    }

    public ValueTask DisposeAsync() => waiter.DisposeAsync();

    private async Task InvokeAsync(Func<Guid, Task> onCancel, Guid taskId)
    {
        try
        {
            await onCancel(taskId);
        }
        catch (Exception e)
        {
            // A subscriber callback has no caller to throw to; heartbeats still deliver the cancel.
            Log.CancelHandlerFailed(logger, e, taskId);
        }
    }

    private void ReportTrimmed(long trimmed)
    {
        if (trimmed > 0)
        {
            Log.DeadLettersTrimmed(logger, options.DeadLetterCap, trimmed);
        }
    }

    private Task<RedisResult> RunAsync(string script, RedisValue[] args, CancellationToken cancellationToken) =>
        scripts.EvaluateAsync(script, keys.Static, args, cancellationToken);

    /// <summary>The arguments describing one task to enqueue.lua and requeue.lua, in the order fresh_args reads them.</summary>
    private static RedisValue[] FreshTaskArgs(QueueItem item)
    {
        ArgumentException.ThrowIfNullOrEmpty(item.User);
        ArgumentOutOfRangeException.ThrowIfLessThan(item.Priority, TaskSpec.MinPriority);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(item.Priority, TaskSpec.MaxPriority);
        ArgumentOutOfRangeException.ThrowIfLessThan(item.MaxAttempts, 1);
        return
        [
            item.TaskId.ToString("D"),
            item.User,
            item.Priority,
            item.Fence,
            item.Attempt,
            item.MaxAttempts,
            Milliseconds(item.RunDeadline),
            item.RunAt is { } runAt ? runAt.ToUnixTimeMilliseconds() : 0,
        ];
    }

    /// <summary>The arguments every queue script starts with (Lua/common.lua), then its own.</summary>
    private RedisValue[] Args(params ReadOnlySpan<RedisValue> rest)
    {
        var args = new RedisValue[CommonArgs + rest.Length];
        args[0] = keys.Prefix;
        args[1] = time.GetUtcNow().ToUnixTimeMilliseconds();
        args[2] = options.DefaultUserConcurrency;
        args[3] = options.TransitionsCap;
        args[4] = Milliseconds(options.FinishedRetention);
        rest.CopyTo(args.AsSpan(CommonArgs));
        return args;
    }

    private async Task<IConnectionMultiplexer> ConnectBlockingAsync()
    {
        var configuration = ConfigurationOptions.Parse(redis.Configuration);
        // BZPOPMIN holds this connection for up to BlockTime; the default timeout must not cut it off.
        configuration.AsyncTimeout = configuration.SyncTimeout = (int)Milliseconds(MarkerWaiter.BlockTime + TimeSpan.FromSeconds(10));
        return await ConnectionMultiplexer.ConnectAsync(configuration);
    }

    private static string OutcomeName(AttemptOutcome outcome)
    {
        var consistent = outcome.Kind switch
        {
            OutcomeKind.Completed => outcome.Status == TaskStatus.Completed,
            OutcomeKind.Cancelled => outcome.Status == TaskStatus.Cancelled,
            OutcomeKind.Retry or OutcomeKind.DeadLetter or OutcomeKind.Failed => outcome.Status is TaskStatus.Failed or TaskStatus.Timeout,
            _ => false,
        };
        if (!consistent)
        {
            throw new ArgumentException($"An outcome of kind {outcome.Kind} cannot end in status {outcome.Status}.", nameof(outcome));
        }
        return outcome.Kind switch
        {
            OutcomeKind.Completed => "completed",
            OutcomeKind.Cancelled => "cancelled",
            OutcomeKind.Retry => "retry",
            OutcomeKind.DeadLetter => "dead",
            _ => "failed",
        };
    }

    private static long Milliseconds(TimeSpan span) => (long)span.TotalMilliseconds;

    private static DateTimeOffset FromMilliseconds(long milliseconds) => DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
}
