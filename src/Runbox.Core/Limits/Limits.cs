namespace Runbox.Core.Limits;

/// <summary>Hard limits for one run. Every field is enforced by the sandbox, not advised.</summary>
public sealed record Limits
{
    public const int DefaultWallTimeMs = 5_000;
    public const int DefaultCpuTimeMs = 5_000;
    public const int DefaultMemoryMb = 256;
    public const int DefaultProcesses = 64;
    public const long DefaultOutputBytes = 1 << 20;
    public const long DefaultDiskBytes = 64L << 20;

    public static Limits Default { get; } = new();

    public TimeSpan WallTime { get; init; } = TimeSpan.FromMilliseconds(DefaultWallTimeMs);
    public TimeSpan CpuTime { get; init; } = TimeSpan.FromMilliseconds(DefaultCpuTimeMs);
    public long MemoryBytes { get; init; } = DefaultMemoryMb * 1024L * 1024L;
    public int Processes { get; init; } = DefaultProcesses;

    /// <summary>Cap per output stream (stdout and stderr each).</summary>
    public long OutputBytes { get; init; } = DefaultOutputBytes;

    /// <summary>Scratch space for /work (and, separately, /tmp).</summary>
    public long DiskBytes { get; init; } = DefaultDiskBytes;

    public long MemoryMb => MemoryBytes / (1024 * 1024);
}

/// <summary>What a server accepts: defaults for omitted fields and maxima for requested ones.</summary>
public sealed record LimitPolicy
{
    public const long DefaultMaxSourceBytes = 1 << 20;
    public const long DefaultMaxStdinBytes = 1 << 20;
    public const int DefaultMaxFiles = 64;
    public const int DefaultMaxArgs = 64;
    public const int DefaultMaxLabels = 32;

    public static LimitPolicy Default { get; } = new();

    public Limits Defaults { get; init; } = Limits.Default;

    public Limits Maxima { get; init; } = new()
    {
        WallTime = TimeSpan.FromSeconds(60),
        CpuTime = TimeSpan.FromSeconds(60),
        MemoryBytes = 2048L * 1024 * 1024,
        Processes = 256,
        OutputBytes = 16L << 20,
        DiskBytes = 512L << 20,
    };

    /// <summary>Source plus all extra files, decoded.</summary>
    public long MaxSourceBytes { get; init; } = DefaultMaxSourceBytes;
    public long MaxStdinBytes { get; init; } = DefaultMaxStdinBytes;
    public int MaxFiles { get; init; } = DefaultMaxFiles;
    public int MaxArgs { get; init; } = DefaultMaxArgs;
    public int MaxLabels { get; init; } = DefaultMaxLabels;
}
