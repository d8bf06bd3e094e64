using System.ComponentModel.DataAnnotations;

namespace Runbox.Sandbox;

/// <summary>Configuration of the container sandbox (section <c>Runbox:Sandbox</c>).</summary>
public sealed class SandboxOptions : IValidatableObject
{
    public const string SectionName = "Runbox:Sandbox";
    public const string AutoRuntime = "auto";
    public const string DefaultStateDirectory = "/var/lib/runbox/sandbox";
    public const int DefaultGracePeriodMs = 500;
    public const long DefaultUidRangeStart = 0x70000000;
    public const long DefaultUidRangeLength = 0x10000000;
    public const int DefaultMaxArtifacts = 16;
    public const long DefaultMaxArtifactBytes = 8L << 20;
    public const int DefaultOpenFiles = 64;
    public const long DefaultSocketMemoryBytes = 16L << 20;

    /// <summary>
    /// <c>auto</c> (crun when it works on this host, else runc), <c>crun</c>, <c>runc</c>, or an absolute
    /// path to either binary.
    /// </summary>
    [Required]
    public string Runtime { get; set; } = AutoRuntime;

    /// <summary>
    /// Holds the prepared rootfs and the per-run folders. One sandbox instance per folder: it is locked
    /// while in use, and leftovers in it are removed at startup. A relative path is taken from the current directory.
    /// </summary>
    [Required]
    public string StateDirectory { get; set; } = DefaultStateDirectory;

    /// <summary>Time between SIGTERM and SIGKILL when a run is stopped (time limit, cancellation).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromMilliseconds(DefaultGracePeriodMs);

    /// <summary>
    /// First host uid runs may have. Each run has a uid (and gid) of its own from
    /// [UidRangeStart, UidRangeStart + UidRangeLength); no account of the host may have one (checked at start),
    /// and each sandbox on the host takes a block of 8,192 of them.
    /// </summary>
    [Range(65536L, 0x7FFFFFFFL)]
    public long UidRangeStart { get; set; } = DefaultUidRangeStart;

    /// <summary>How many uids the range has, from <see cref="UidRangeStart"/>.</summary>
    [Range(8192L, 0x7FFFFFFFL)]
    public long UidRangeLength { get; set; } = DefaultUidRangeLength;

    /// <summary>CPUs a run may use at once (cgroup CPU quota).</summary>
    [Range(0.1, 64.0)]
    public double Cpus { get; set; } = 1.0;

    /// <summary>RLIMIT_NOFILE inside the container: it also bounds the sockets (and their buffers) a run holds.</summary>
    [Range(16, 65536)]
    public int OpenFiles { get; set; } = DefaultOpenFiles;

    /// <summary>
    /// On cgroup v1, what a run's socket buffers may take beside its memory limit (the kernel counts them
    /// apart there). On cgroup v2 they count against the memory limit itself and this is not used.
    /// </summary>
    [Range(1L << 20, 1L << 30)]
    public long SocketMemoryBytes { get; set; } = DefaultSocketMemoryBytes;

    /// <summary>Files under /work/out returned as artifacts; further files are ignored.</summary>
    [Range(0, 1024)]
    public int MaxArtifacts { get; set; } = DefaultMaxArtifacts;

    /// <summary>Total size of returned artifacts; a file that would exceed it is skipped.</summary>
    [Range(0, 1L << 30)]
    public long MaxArtifactBytes { get; set; } = DefaultMaxArtifactBytes;

    /// <summary>Limits of the compile step of compiled languages (the run uses the task's limits).</summary>
    [Required]
    public CompileLimitsOptions Compile { get; set; } = new();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Runtime is not (AutoRuntime or "crun" or "runc") && !Path.IsPathFullyQualified(Runtime))
        {
            yield return new ValidationResult("Runtime must be auto, crun, runc or an absolute path", [nameof(Runtime)]);
        }
        if (UidRangeStart + UidRangeLength > 0x80000000L)
        {
            yield return new ValidationResult("UidRangeStart + UidRangeLength must not pass 2^31: some tools misread higher uids", [nameof(UidRangeStart), nameof(UidRangeLength)]);
        }
        var compileErrors = new List<ValidationResult>();
        Validator.TryValidateObject(Compile, new ValidationContext(Compile), compileErrors, validateAllProperties: true);
        foreach (var error in compileErrors)
        {
            yield return new ValidationResult("Compile: " + error.ErrorMessage, error.MemberNames.Select(m => $"{nameof(Compile)}.{m}"));
        }
    }
}

/// <summary>Limits of the compile step; compilers need more room than most programs.</summary>
public sealed class CompileLimitsOptions
{
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan WallTime { get; set; } = TimeSpan.FromSeconds(20);

    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan CpuTime { get; set; } = TimeSpan.FromSeconds(20);

    [Range(16L << 20, 16L << 30)]
    public long MemoryBytes { get; set; } = 768L << 20;

    [Range(8, 4096)]
    public int Processes { get; set; } = 128;

    /// <summary>Compiler output kept (stdout and stderr each).</summary>
    [Range(1024, 16L << 20)]
    public long OutputBytes { get; set; } = 64 << 10;
}
