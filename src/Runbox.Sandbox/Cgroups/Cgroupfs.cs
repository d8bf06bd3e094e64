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
/// <remarks>
/// Run cgroups live under <see cref="RunsParent"/>, beneath the service's own cgroup (<see cref="Home"/>,
/// read from /proc/self/cgroup): under systemd the unit's (<c>Delegate=yes</c>), in a container or a pod the
/// one it was given. The service writes nowhere above its home. Paths are written from the hierarchy's root
/// (or the cgroup namespace's), as config.json's <c>cgroupsPath</c> takes them.
/// </remarks>
internal abstract class Cgroupfs(string root, string home)
{
    public const string DefaultRoot = "/sys/fs/cgroup";
    protected const long CpuPeriodMicroseconds = 100_000;

    /// <summary>Where cgroupfs is mounted; tests point it at a folder laid out like it.</summary>
    protected string Root { get; } = root;

    /// <summary>The service's own cgroup, e.g. <c>/</c> or <c>/system.slice/runbox.service</c>.</summary>
    public string Home { get; } = home;

    /// <summary>The parent of every run cgroup: <c>runbox</c> in <see cref="Home"/>.</summary>
    public string RunsParent => Home == "/" ? "/runbox" : Home + "/runbox";

    public abstract string Version { get; }

    /// <summary>
    /// Whether socket buffers are limited apart from the memory limit (v1, <c>memory.kmem.tcp.limit_in_bytes</c>)
    /// rather than inside it (v2): a runtime that makes the container's own cgroup must be told the limit too.
    /// </summary>
    public abstract bool LimitsSocketMemoryApart { get; }

    /// <summary>The hierarchy's version, where the runs live, and what the service did to get there; for the log and /health/ready.</summary>
    public virtual string Describe() => $"cgroup {Version}, runs under {RunsParent}";

    /// <summary>
    /// The cgroupfs at <paramref name="root"/> as this process sees it, made ready for run cgroups: on v2
    /// the service leaves its own cgroup for a leaf of it and enables the controllers below (see
    /// <see cref="CgroupfsV2"/>). <paramref name="selfCgroup"/> is the text of /proc/self/cgroup.
    /// </summary>
    /// <exception cref="SandboxException">No usable hierarchy, or the controllers runs need are not delegated to the service.</exception>
    public static Cgroupfs Detect(string root = DefaultRoot, string? selfCgroup = null)
    {
        selfCgroup ??= Libc.ReadFile("/proc/self/cgroup") ?? "";
        if (File.Exists(Path.Combine(root, "cgroup.controllers")))
        {
            return CgroupfsV2.Prepare(root, selfCgroup);
        }
        if (Directory.Exists(Path.Combine(root, "memory")))
        {
            return CgroupfsV1.Prepare(root, selfCgroup);
        }
        throw new SandboxException(
            $"no usable cgroup hierarchy at {root}: neither cgroup v2 (no {root}/cgroup.controllers) nor the cgroup v1 memory hierarchy ({root}/memory) is mounted; "
            + $"mount cgroup2 there (mount -t cgroup2 none {root}) or boot with the cgroup v1 controllers mounted");
    }

    /// <summary>The cgroup path of <paramref name="controller"/> in /proc/self/cgroup text ("4:memory:/a", or "0::/a" for v2's ""), or null.</summary>
    protected static string? OwnPath(string selfCgroup, string controller)
    {
        foreach (var line in selfCgroup.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3 && (controller.Length == 0 ? parts[0] == "0" && parts[1].Length == 0 : parts[1].Split(',').Contains(controller)))
            {
                return parts[2].Trim() is { Length: > 0 } path ? path : "/";
            }
        }
        return null;
    }

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
    public virtual void KillAll(string path)
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

internal sealed class CgroupfsV1(string root, string home, string? note = null) : Cgroupfs(root, home)
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

    public override string Describe() => base.Describe() + (note is null ? "" : $" ({note})");

    /// <summary>
    /// The v1 hierarchies with the runs under the service's own cgroup where it has one cgroup in every
    /// hierarchy the runs use (systemd with <c>Delegate=yes</c> gives it that), else under each hierarchy's
    /// root, as before v2 existed: a run has one cgroup path (config.json's <c>cgroupsPath</c>) for all of
    /// them, and v1 has no delegation to respect. Nothing is moved: v1 lets a cgroup with processes have children.
    /// </summary>
    public static CgroupfsV1 Prepare(string root, string selfCgroup)
    {
        var homes = Controllers.Append(Devices).Select(controller => OwnPath(selfCgroup, controller) ?? "/").Distinct(StringComparer.Ordinal).ToList();
        return homes.Count == 1
            ? new CgroupfsV1(root, homes[0])
            : new CgroupfsV1(root, "/", $"this process is in different cgroups per hierarchy ({string.Join(", ", homes)}), so the runs are under each hierarchy's root");
    }

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

/// <summary>
/// The unified hierarchy. A v2 cgroup that enables controllers for its children may hold no process of its
/// own ("no internal processes"), so a service in a cgroup of its own (a systemd unit, a container's cgroup
/// namespace) first moves itself into the leaf <c>service</c> of it; its runs then go to <c>runbox</c> beside
/// that leaf, with cpu, memory and pids enabled on the way. Every write is at or below the service's cgroup.
/// </summary>
internal sealed class CgroupfsV2(string root, string home, string? note) : Cgroupfs(root, home)
{
    private const string Controllers = "+cpu +memory +pids";
    private static readonly string[] Required = ["cpu", "memory", "pids"];

    /// <summary>The leaf the service's own processes move to.</summary>
    public const string ServiceLeaf = "service";

    // Once the process has left its cgroup for the leaf, /proc/self/cgroup names the leaf: every later
    // detection in this process (per cgroupfs root) goes on from the first one's home.
    private static readonly Dictionary<string, (string Home, string? Note)> Prepared = new(StringComparer.Ordinal);
    private static readonly Lock PreparedGate = new();

    public override string Version => "v2";

    // memory.max covers socket buffers (the "sock" line of memory.stat).
    public override bool LimitsSocketMemoryApart => false;

    public override string Describe() => base.Describe() + (note is null ? "" : $" ({note})");

    /// <exception cref="SandboxException">The controllers are not delegated, or other processes share the service's cgroup.</exception>
    public static CgroupfsV2 Prepare(string root, string selfCgroup)
    {
        lock (PreparedGate)
        {
            if (Prepared.TryGetValue(root, out var known))
            {
                return new CgroupfsV2(root, known.Home, known.Note);
            }
            var home = OwnPath(selfCgroup, "")
                ?? throw new SandboxException($"cgroup v2 is mounted at {root}, but /proc/self/cgroup has no cgroup v2 line (0::/path)");
            var homeDirectory = Path.Combine(root, home.TrimStart('/'));
            var available = (Libc.ReadFile(Path.Combine(homeDirectory, "cgroup.controllers")) ?? "").Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            var missing = Required.Where(c => !available.Contains(c, StringComparer.Ordinal)).ToList();
            if (missing.Count > 0)
            {
                throw new SandboxException(
                    $"cgroup v2: the {string.Join(", ", missing)} controller{(missing.Count > 1 ? "s are" : " is")} not delegated to this service's cgroup {home} "
                    + $"(its cgroup.controllers: \"{string.Join(' ', available)}\"); run Runbox as a systemd service with Delegate=yes (deploy/runbox.service), "
                    + "or in a container or pod given a cgroup of its own with those controllers");
            }
            string? note = null;
            // The root cgroup has no cgroup.type and may hold processes beside enabled controllers.
            if (File.Exists(Path.Combine(homeDirectory, "cgroup.type")))
            {
                var moved = MoveOwnProcesses(homeDirectory);
                note = $"the service moved {moved} process{(moved == 1 ? "" : "es")} of its own into {home.TrimEnd('/')}/{ServiceLeaf}";
            }
            try
            {
                Libc.WriteFile(Path.Combine(homeDirectory, "cgroup.subtree_control"), Controllers);
                var runs = Path.Combine(homeDirectory, "runbox");
                Directory.CreateDirectory(runs);
                Libc.WriteFile(Path.Combine(runs, "cgroup.subtree_control"), Controllers);
            }
            catch (IOException e)
            {
                var others = (Libc.ReadFile(Path.Combine(homeDirectory, "cgroup.procs")) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries);
                throw new SandboxException(
                    $"cgroup v2: cannot enable {Controllers} below {home} ({e.Message})"
                    + (others.Length > 0 ? $"; processes that are not the service's share its cgroup (pids {string.Join(' ', others.Take(5))})" : "")
                    + "; start Runbox in a cgroup of its own: a systemd service or scope with Delegate=yes (deploy/runbox.service, or systemd-run --scope -p Delegate=yes)");
            }
            Prepared[root] = (home, note);
            return new CgroupfsV2(root, home, note);
        }
    }

    /// <summary>Moves this process, and any child it started already (the embedded redis-server), to the service leaf.</summary>
    private static int MoveOwnProcesses(string homeDirectory)
    {
        var leaf = Path.Combine(homeDirectory, ServiceLeaf);
        Directory.CreateDirectory(leaf);
        var self = Environment.ProcessId;
        var moved = 0;
        foreach (var line in (Libc.ReadFile(Path.Combine(homeDirectory, "cgroup.procs")) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries).Append(Text(self)).Distinct(StringComparer.Ordinal))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && (pid == self || ParentOf(pid) == self))
            {
                Libc.WriteFile(Path.Combine(leaf, "cgroup.procs"), Text(pid));
                moved++;
            }
        }
        return moved;
    }

    private static int? ParentOf(int pid)
    {
        var status = Libc.ReadFile($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status") ?? "";
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("PPid:", StringComparison.Ordinal))
            {
                return int.TryParse(line.AsSpan(5).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var parent) ? parent : null;
            }
        }
        return null;
    }

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

    /// <summary>cgroup.kill (kernel 5.14 on) kills the whole subtree at once, forks in flight included.</summary>
    public override void KillAll(string path)
    {
        var kill = Path.Combine(Dir("", path), "cgroup.kill");
        if (File.Exists(kill))
        {
            Libc.WriteFile(kill, "1");
            return;
        }
        base.KillAll(path);
    }

    protected override OomEventCounter? Configure(string path, CgroupLimits limits)
    {
        // The controllers are enabled down to RunsParent by Prepare.
        var dir = Dir("", path);
        Directory.CreateDirectory(dir);
        Libc.WriteFile(Path.Combine(dir, "memory.max"), Text(limits.MemoryBytes));
        Libc.WriteFile(Path.Combine(dir, "memory.swap.max"), "0");
        Libc.WriteFile(Path.Combine(dir, "pids.max"), Text(limits.Processes));
        Libc.WriteFile(Path.Combine(dir, "cpu.max"), $"{Text((long)(limits.Cpus * CpuPeriodMicroseconds))} {Text(CpuPeriodMicroseconds)}");
        return null;
    }
}
