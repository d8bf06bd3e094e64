using System.Globalization;

namespace Runbox.Sandbox.Cgroups;

/// <summary>What the kernel counted for one container; read before the container is deleted.</summary>
internal sealed record CgroupStats(long MemoryPeakBytes, long OomKills, TimeSpan CpuTime, long PidsLimitHits)
{
    public static CgroupStats Empty { get; } = new(0, 0, TimeSpan.Zero, 0);
}

/// <summary>
/// Reads a container's counters from cgroupfs. The layout differs between cgroup v1 (one hierarchy per
/// controller; what this host has) and the unified v2 hierarchy, so there is one reader per version,
/// chosen by <see cref="Detect"/>.
/// </summary>
internal abstract class CgroupReader(string root)
{
    public const string DefaultRoot = "/sys/fs/cgroup";

    /// <summary>Where cgroupfs is mounted; tests point it at a folder of fake counter files.</summary>
    protected string Root { get; } = root;

    public abstract string Version { get; }

    public static CgroupReader Detect(string root = DefaultRoot) =>
        File.Exists(Path.Combine(root, "cgroup.controllers")) ? new CgroupV2Reader(root) : new CgroupV1Reader(root);

    /// <summary>Counters of the cgroup at <paramref name="cgroupPath"/> (as in config.json); missing files read as 0.</summary>
    public abstract CgroupStats Read(string cgroupPath);

    /// <summary>CPU time used so far, for the CPU-time watchdog.</summary>
    public abstract TimeSpan ReadCpuTime(string cgroupPath);

    /// <summary>The directories (one per hierarchy) that hold cgroups under <paramref name="parent"/>.</summary>
    public abstract IEnumerable<string> ParentDirectories(string parent);

    protected static long ReadNumber(string file)
    {
        var text = TryRead(file);
        return text is not null && long.TryParse(text.AsSpan().Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : 0;
    }

    /// <summary>A value from a flat keyed file such as <c>memory.events</c> ("oom_kill 1").</summary>
    protected static long ReadKey(string file, string key)
    {
        var text = TryRead(file);
        if (text is null)
        {
            return 0;
        }
        foreach (var line in text.Split('\n'))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && line.AsSpan(0, space).SequenceEqual(key)
                && long.TryParse(line.AsSpan(space + 1).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }
        }
        return 0;
    }

    private static string? TryRead(string file)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}

internal sealed class CgroupV1Reader(string root) : CgroupReader(root)
{
    public override string Version => "v1";

    public override CgroupStats Read(string cgroupPath)
    {
        var memory = Dir("memory", cgroupPath);
        return new CgroupStats(
            MemoryPeakBytes: ReadNumber(Path.Combine(memory, "memory.max_usage_in_bytes")),
            // memory.failcnt stays 0 when a memsw limit is set (probe §2.4); oom_kill counts every victim.
            OomKills: ReadKey(Path.Combine(memory, "memory.oom_control"), "oom_kill"),
            CpuTime: ReadCpuTime(cgroupPath),
            PidsLimitHits: ReadKey(Path.Combine(Dir("pids", cgroupPath), "pids.events"), "max"));
    }

    public override TimeSpan ReadCpuTime(string cgroupPath) =>
        TimeSpan.FromTicks(ReadNumber(Path.Combine(Dir("cpuacct", cgroupPath), "cpuacct.usage")) / 100);

    public override IEnumerable<string> ParentDirectories(string parent) =>
        Directory.EnumerateDirectories(Root)
            .Select(hierarchy => Path.Combine(hierarchy, parent.TrimStart('/')))
            .Where(Directory.Exists);

    private string Dir(string controller, string cgroupPath) => Path.Combine(Root, controller, cgroupPath.TrimStart('/'));
}

internal sealed class CgroupV2Reader(string root) : CgroupReader(root)
{
    public override string Version => "v2";

    public override CgroupStats Read(string cgroupPath)
    {
        var dir = Dir(cgroupPath);
        return new CgroupStats(
            // memory.peak exists from kernel 5.19 on.
            MemoryPeakBytes: ReadNumber(Path.Combine(dir, "memory.peak")),
            OomKills: ReadKey(Path.Combine(dir, "memory.events"), "oom_kill"),
            CpuTime: ReadCpuTime(cgroupPath),
            PidsLimitHits: ReadKey(Path.Combine(dir, "pids.events"), "max"));
    }

    public override TimeSpan ReadCpuTime(string cgroupPath) =>
        TimeSpan.FromMicroseconds(ReadKey(Path.Combine(Dir(cgroupPath), "cpu.stat"), "usage_usec"));

    public override IEnumerable<string> ParentDirectories(string parent)
    {
        var dir = Dir(parent);
        return Directory.Exists(dir) ? [dir] : [];
    }

    private string Dir(string cgroupPath) => Path.Combine(Root, cgroupPath.TrimStart('/'));
}
