using System.ComponentModel.DataAnnotations;

namespace Runbox.Lifecycle;

/// <summary>How tasks move between states, the same in every process (section <c>Runbox:Lifecycle</c>).</summary>
public sealed class LifecycleOptions
{
    public const string SectionName = "Runbox:Lifecycle";
    public const int DefaultMaxStalls = 3;

    /// <summary>How long an attempt may hold its lease beyond its own compile and run limits before the reaper times it out.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan DeadlineSlack { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// What compiling may add to an attempt's deadline beside the run's wall time. Unset, it is the larger of
    /// 60 s and the sandbox's compile wall time (<c>Runbox:Sandbox:Compile:WallTime</c>), so that raising that
    /// limit never makes the reaper end compiles it allows.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan CompileAllowance { get; set; } = DefaultCompileAllowance;

    public static readonly TimeSpan DefaultCompileAllowance = TimeSpan.FromSeconds(60);

    /// <summary>Lease losses a task may cause before it is dead-lettered as a poison pill, whatever its retry policy.</summary>
    [Range(0, 100)]
    public int MaxStalls { get; set; } = DefaultMaxStalls;
}
