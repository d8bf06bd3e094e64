using System.ComponentModel.DataAnnotations;

namespace Runbox.Store;

/// <summary>Bounds on what the store keeps per attempt, and how long SQLite waits for its write lock.</summary>
public sealed class StoreOptions
{
    /// <summary>The largest output the API accepts as a limit (16 MiB), so a stored run is never cut twice.</summary>
    public const int DefaultMaxOutputBytes = 16 << 20;
    public const int DefaultMaxArtifactCount = 32;
    public const long DefaultMaxArtifactBytes = 16L << 20;
    public static readonly TimeSpan DefaultBusyTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Stdout, stderr and compiler output are each cut to this many UTF-8 bytes when stored, and
    /// marked truncated.
    /// </summary>
    [Range(1024, 1 << 30)]
    public int MaxOutputBytes { get; set; } = DefaultMaxOutputBytes;

    /// <summary>Artifacts kept per attempt; later ones are dropped and the result's error says so.</summary>
    [Range(0, 10_000)]
    public int MaxArtifactCount { get; set; } = DefaultMaxArtifactCount;

    /// <summary>Total artifact bytes kept per attempt; an artifact that would exceed it is dropped.</summary>
    [Range(0, 1L << 32)]
    public long MaxArtifactBytes { get; set; } = DefaultMaxArtifactBytes;

    /// <summary>How long a SQLite writer waits for another writer before it gives up (SQLITE_BUSY).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan BusyTimeout { get; set; } = DefaultBusyTimeout;
}
