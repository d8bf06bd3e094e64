using System.Globalization;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Cgroups;

/// <summary>
/// What the kernel counted for one run; read after the container has ended. ProcessesPeak is the most
/// processes alive at once (pids.peak; 0 where the kernel lacks it).
/// </summary>
internal sealed record CgroupStats(long MemoryPeakBytes, long OomKills, TimeSpan CpuTime, long ProcessesPeak)
{
    public static CgroupStats Empty { get; } = new(0, 0, TimeSpan.Zero, 0);
}

/// <summary>
/// The limits the service sets on a run's cgroup. With <paramref name="DeviceAllowlist"/> it also restricts
/// devices as a runtime would for its container's own cgroup: for a runtime that creates none
/// (<see cref="CgroupPlacement"/>). <paramref name="SocketMemoryBytes"/> is what socket buffers may take
/// beside <paramref name="MemoryBytes"/> where the kernel counts them apart (cgroup v1);
/// <paramref name="ContainerCgroup"/>, the child a runtime will make for the container, is then prepared
/// with that limit as well.
/// </summary>
internal sealed record CgroupLimits(long MemoryBytes, int Processes, double Cpus, long SocketMemoryBytes, bool DeviceAllowlist = false, string? ContainerCgroup = null);

/// <summary>
/// The host's cgroupfs. Each run gets a cgroup of its own that the service creates, limits and reads
/// (<see cref="RunCgroup"/>); the OCI runtime creates the container's cgroup beneath it and removes that
/// one when the container ends, so the counters outlive the container in the run's cgroup. Limits sit on
/// the run's cgroup too: the kernel counts an OOM kill where the limit was hit, so the service can see it.
/// The layout differs between cgroup v1 (one hierarchy per controller; what this host has) and the
/// unified v2 hierarchy, hence one subclass per version, chosen by <see cref="Detect"/>.
/// </summary>
internal abstract class Cgroupfs(string root)
{
    public const string DefaultRoot = "/sys/fs/cgroup";
    protected const long CpuPeriodMicroseconds = 100_000;

    /// <summary>Where cgroupfs is mounted; tests point it at a folder laid out like it.</summary>
    protected string Root { get; } = root;

    public abstract string Version { get; }

    /// <summary>
    /// Whether socket buffers are limited apart from the memory limit (v1, <c>memory.kmem.tcp.limit_in_bytes</c>)
    /// rather than inside it (v2): a runtime that makes the container's own cgroup must be told the limit too.
    /// </summary>
    public abstract bool LimitsSocketMemoryApart { get; }

    public static Cgroupfs Detect(string root = DefaultRoot) =>
        File.Exists(Path.Combine(root, "cgroup.controllers")) ? new CgroupfsV2(root) : new CgroupfsV1(root);

    /// <summary>
    /// Creates the cgroup at <paramref name="path"/> (e.g. <c>/runbox/rbx-…</c>) with its limits;
    /// <paramref name="removed"/> is called once the cgroup is gone again.
    /// </summary>
    /// <exception cref="IOException">cgroupfs refused a directory or a limit.</exception>
    public RunCgroup Create(string path, CgroupLimits limits, Action<string>? removed = null)
    {
        var cgroup = new RunCgroup(this, path, removed);
        try
        {
            cgroup.OomEvents = Configure(path, limits);
        }
        catch
        {
            cgroup.Dispose();
            throw;
        }
        return cgroup;
    }

    /// <summary>
    /// Counters of the cgroup at <paramref name="path"/>; missing files read as 0. <paramref name="oomEvents"/>
    /// are the OOM events counted outside cgroupfs (v1, see <see cref="Configure"/>).
    /// </summary>
    public abstract CgroupStats Read(string path, long oomEvents);

    /// <summary>
    /// Starting the runtime inside run cgroups made with <see cref="CgroupLimits.DeviceAllowlist"/> (see
    /// <see cref="CgroupPlacement"/>); null where a thread cannot sit in other cgroups than its process (v2).
    /// </summary>
    public virtual CgroupPlacement? CreatePlacement() => null;

    /// <summary>CPU time used so far, for the CPU-time watchdog.</summary>
    public abstract TimeSpan ReadCpuTime(string path);

    /// <summary>The directories the cgroup at <paramref name="path"/> has in each hierarchy, whether they exist or not.</summary>
    public abstract IEnumerable<string> Directories(string path);

    /// <summary>
    /// Removes the cgroup at <paramref name="path"/> and every cgroup beneath it, deepest first. A cgroup
    /// still holding processes (a crashed runtime's container, or processes not yet gone after their
    /// container ended) cannot be removed: they are killed, and the removal retried for up to a second.
    /// </summary>
    /// <returns>The directories that were removed.</returns>
    /// <exception cref="IOException">A cgroup stayed busy.</exception>
    public List<string> Remove(string path)
    {
        var removed = new List<string>();
        // A run cgroup is in some hierarchies only (five of eleven on this host, or all where the runtime
        // made its container's cgroup in each): a stat, not a failed rmdir's exception, skips the others.
        foreach (var directory in Directories(path).Where(Directory.Exists))
        {
            RemoveTree(directory, removed);
        }
        return removed;
    }

    /// <summary>
    /// Sends SIGKILL to every process in the cgroup at <paramref name="path"/> and below it, in every
    /// hierarchy: what is left of a run whose runtime is gone.
    /// </summary>
    public void KillAll(string path)
    {
        foreach (var directory in Directories(path).Where(Directory.Exists))
        {
            KillTree(directory);
        }
    }

    private static void KillTree(string directory)
    {
        try
        {
            foreach (var child in Directory.GetDirectories(directory))
            {
                KillTree(child);
            }
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }
        KillMembers(directory);
    }

    /// <summary>Makes the directories and writes the limits; returns the OOM event source if the version needs one.</summary>
    protected abstract OomEventCounter? Configure(string path, CgroupLimits limits);

    protected string Dir(string hierarchy, string path) => Path.Combine(Root, hierarchy, path.TrimStart('/'));

    protected static long ReadNumber(string file)
    {
        var text = Libc.ReadFile(file);
        return text is not null && long.TryParse(text.AsSpan().Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : 0;
    }

    /// <summary>A value from a flat keyed file such as <c>memory.events</c> ("oom_kill 1").</summary>
    protected static long ReadKey(string file, string key)
    {
        var text = Libc.ReadFile(file);
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

    protected static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static void RemoveTree(string directory, List<string> removed)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // rmdir: a cgroup's files belong to the kernel and go with the directory. It is tried first:
                // most run cgroups have no child by now, and most hierarchies have no such cgroup at all.
                Directory.Delete(directory);
                removed.Add(directory);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException) when (attempt < 100)
            {
                var children = Directory.GetDirectories(directory);
                foreach (var child in children)
                {
                    RemoveTree(child, removed);
                }
                if (children.Length == 0)
                {
                    KillMembers(directory);
                    Thread.Sleep(10);
                }
            }
        }
    }

    private static void KillMembers(string directory)
    {
        var members = Libc.ReadFile(Path.Combine(directory, "cgroup.procs")) ?? "";
        foreach (var line in members.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // This service's own threads pass through run cgroups to start runtimes (CgroupPlacement);
            // it never kills itself.
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId)
            {
                Libc.Kill(pid, Libc.Sigkill);
            }
        }
    }

}

internal sealed class CgroupfsV1(string root) : Cgroupfs(root)
{
    // The hierarchies the service configures or reads; the runtime adds the container's cgroup in every
    // hierarchy, so removal goes through all of them.
    private static readonly string[] Controllers = ["memory", "pids", "cpu", "cpuacct"];

    private const string Devices = "devices";

    /// <summary>
    /// The devices a runtime allows a container by default: /dev/null, zero, full, random, urandom, tty,
    /// console, ptmx and the ptys. crun 1.8.1 managing its own cgroups writes these nine and also
    /// <c>c *:* m</c> and <c>b *:* m</c> (read off its devices.list, 2026-12-02); mknod of other devices is
    /// left out here, since the program holds no CAP_MKNOD and crun's own nodes in /dev are among the nine.
    /// </summary>
    private static readonly string[] AllowedDevices =
    [
        "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",
    ];

    // Hierarchies are mounted once (scripts/host-setup, before the service starts): listed on first use,
    // not on every run's removal.
    private string[]? _hierarchies;
    private bool? _swapAccounting;
    private bool? _tcpAccounting;

    public override string Version => "v1";

    // Where the kernel has it (CONFIG_MEMCG_KMEM): it is in the root memory cgroup as in every other.
    public override bool LimitsSocketMemoryApart => _tcpAccounting ??= File.Exists(Path.Combine(Root, "memory", "memory.kmem.tcp.limit_in_bytes"));

    public override CgroupStats Read(string path, long oomEvents) => new(
        MemoryPeakBytes: ReadNumber(Path.Combine(Dir("memory", path), "memory.max_usage_in_bytes")),
        // v1 counts oom_kill only in the victim's own cgroup, which the runtime has removed by now:
        // the count comes from the OOM notification registered on this cgroup (see Configure).
        OomKills: oomEvents,
        CpuTime: ReadCpuTime(path),
        ProcessesPeak: ReadNumber(Path.Combine(Dir("pids", path), "pids.peak")));

    public override CgroupPlacement CreatePlacement() => new(Root, [.. Controllers, Devices]);

    public override TimeSpan ReadCpuTime(string path) =>
        TimeSpan.FromTicks(ReadNumber(Path.Combine(Dir("cpuacct", path), "cpuacct.usage")) / 100);

    public override IEnumerable<string> Directories(string path)
    {
        _hierarchies ??= Directory.Exists(Root) ? Directory.GetDirectories(Root) : [];
        return _hierarchies.Select(hierarchy => Path.Combine(hierarchy, path.TrimStart('/')));
    }

    protected override OomEventCounter? Configure(string path, CgroupLimits limits)
    {
        foreach (var controller in Controllers)
        {
            Directory.CreateDirectory(Dir(controller, path));
        }
        var memory = Dir("memory", path);
        Libc.WriteFile(Path.Combine(memory, "memory.limit_in_bytes"), Text(limits.MemoryBytes));
        // memory+swap equal to memory: no swapping past the limit (the file exists with swap accounting on,
        // a boot-time setting of the host, so looked for once).
        var memsw = Path.Combine(memory, "memory.memsw.limit_in_bytes");
        _swapAccounting ??= File.Exists(memsw);
        if (_swapAccounting.Value)
        {
            Libc.WriteFile(memsw, Text(limits.MemoryBytes));
        }
        // v1 charges socket buffers (TCP, and UDP's receive queues) to a memory cgroup only once this is
        // written, and then to a counter of their own beside memory.limit_in_bytes: without it a run queued
        // gigabytes of TCP buffers on its own loopback that no limit saw. Sockets made before the write are
        // not charged; nothing of the run exists yet.
        if (LimitsSocketMemoryApart)
        {
            Libc.WriteFile(Path.Combine(memory, "memory.kmem.tcp.limit_in_bytes"), Text(limits.SocketMemoryBytes));
            if (limits.ContainerCgroup is { } child)
            {
                // The kernel looks for the limit in the socket's own cgroup: the container's, where a runtime
                // that manages cgroups puts the program. runc ignores a kernelTCP in config.json, so the
                // service makes that cgroup first; a runtime takes a cgroup that exists as it is.
                var container = Path.Combine(memory, child);
                Directory.CreateDirectory(container);
                Libc.WriteFile(Path.Combine(container, "memory.kmem.tcp.limit_in_bytes"), Text(limits.SocketMemoryBytes));
            }
        }
        Libc.WriteFile(Path.Combine(Dir("pids", path), "pids.max"), Text(limits.Processes));
        // A new cgroup's CFS period is the kernel's 100 ms, which the quota is reckoned in. Each write of
        // either walks every cgroup of the cpu hierarchy (the kernel checks the quotas still fit), so the
        // period is left as it is.
        Libc.WriteFile(Path.Combine(Dir("cpu", path), "cpu.cfs_quota_us"), Text((long)(limits.Cpus * CpuPeriodMicroseconds)));
        if (limits.DeviceAllowlist)
        {
            var devices = Dir(Devices, path);
            Directory.CreateDirectory(devices);
            Libc.WriteFile(Path.Combine(devices, "devices.deny"), "a");
            foreach (var rule in AllowedDevices)
            {
                Libc.WriteFile(Path.Combine(devices, "devices.allow"), rule);
            }
        }
        return OomEventCounter.Register(memory);
    }
}

internal sealed class CgroupfsV2(string root) : Cgroupfs(root)
{
    private const string Controllers = "+cpu +memory +pids";

    // Every run cgroup has the same parent; its controllers are enabled once, not on every run.
    private string? _enabledParent;

    public override string Version => "v2";

    // memory.max covers socket buffers (the "sock" line of memory.stat).
    public override bool LimitsSocketMemoryApart => false;

    public override CgroupStats Read(string path, long oomEvents)
    {
        var dir = Dir("", path);
        return new CgroupStats(
            // memory.peak exists from kernel 5.19 on; memory.events counts the whole subtree.
            MemoryPeakBytes: ReadNumber(Path.Combine(dir, "memory.peak")),
            OomKills: ReadKey(Path.Combine(dir, "memory.events"), "oom_kill"),
            CpuTime: ReadCpuTime(path),
            ProcessesPeak: ReadNumber(Path.Combine(dir, "pids.peak")));
    }

    public override TimeSpan ReadCpuTime(string path) =>
        TimeSpan.FromMicroseconds(ReadKey(Path.Combine(Dir("", path), "cpu.stat"), "usage_usec"));

    public override IEnumerable<string> Directories(string path)
    {
        return [Dir("", path)];
    }

    protected override OomEventCounter? Configure(string path, CgroupLimits limits)
    {
        var parent = Path.GetDirectoryName(path.TrimStart('/'))!;
        if (parent != _enabledParent)
        {
            EnableControllersDownTo(parent);
            _enabledParent = parent;
        }
        var dir = Dir("", path);
        Directory.CreateDirectory(dir);
        Libc.WriteFile(Path.Combine(dir, "memory.max"), Text(limits.MemoryBytes));
        Libc.WriteFile(Path.Combine(dir, "memory.swap.max"), "0");
        Libc.WriteFile(Path.Combine(dir, "pids.max"), Text(limits.Processes));
        Libc.WriteFile(Path.Combine(dir, "cpu.max"), $"{Text((long)(limits.Cpus * CpuPeriodMicroseconds))} {Text(CpuPeriodMicroseconds)}");
        return null;
    }

    /// <summary>Controllers reach a cgroup only when every ancestor enables them for its children.</summary>
    private void EnableControllersDownTo(string parent)
    {
        var ancestor = Root;
        foreach (var part in parent.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            Libc.WriteFile(Path.Combine(ancestor, "cgroup.subtree_control"), Controllers);
            ancestor = Path.Combine(ancestor, part);
            Directory.CreateDirectory(ancestor);
        }
        Libc.WriteFile(Path.Combine(ancestor, "cgroup.subtree_control"), Controllers);
    }
}
