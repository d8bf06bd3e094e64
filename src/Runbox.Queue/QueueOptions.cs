using System.ComponentModel.DataAnnotations;

namespace Runbox.Queue;

/// <summary>Settings of the Redis dispatch plane (<see cref="RedisTaskQueue"/>, <see cref="RedisTaskEvents"/>).</summary>
public sealed class QueueOptions
{
    public const string DefaultKeyPrefix = "runbox";
    public const int DefaultUserConcurrencyLimit = 4;
    public const int DefaultDeadLetterCap = 10_000;
    public const int DefaultTransitionsCap = 10_000;
    public const int DefaultEventsPerTask = 1_000;

    /// <summary>A StackExchange.Redis connection string (used by <see cref="QueueServiceCollectionExtensions.AddRunboxQueue"/>).</summary>
    [Required]
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// Every key is <c>{prefix}:…</c>: the braces make the prefix the hash tag, so all of a queue's keys
    /// live in one Redis Cluster slot and every script stays atomic. Braces and spaces are not allowed in it.
    /// </summary>
    [Required]
    [RegularExpression(@"^[^{}\s]{1,64}$")]
    public string KeyPrefix { get; set; } = DefaultKeyPrefix;

    /// <summary>How long a claim or heartbeat holds a task; workers heartbeat well within it.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long past its lease a task is left before the reaper takes it (clock skew, GC pauses).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ReapGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Running tasks per user when no per-user limit was set (a single user can be set to 0).</summary>
    [Range(1, 100_000)]
    public int DefaultUserConcurrency { get; set; } = DefaultUserConcurrencyLimit;

    /// <summary>Dead letters kept; older ones are trimmed, counted and logged.</summary>
    [Range(1, 10_000_000)]
    public int DeadLetterCap { get; set; } = DefaultDeadLetterCap;

    /// <summary>How long a finished task's record stays (late writers get a clean "stale" answer).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan FinishedRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Approximate length of the global transitions stream.</summary>
    [Range(100, 10_000_000)]
    public int TransitionsCap { get; set; } = DefaultTransitionsCap;

    /// <summary>Approximate length of one task's event stream.</summary>
    [Range(10, 1_000_000)]
    public int EventsPerTask { get; set; } = DefaultEventsPerTask;

    /// <summary>A task's event stream vanishes this long after its last event.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan EventsRetention { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A worker that has not registered for this long drops out of the list.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan WorkerTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Due delayed tasks a claim promotes before it claims (bounds the cost of one claim).</summary>
    [Range(1, 10_000)]
    public int PromoteBatch { get; set; } = 100;
}
