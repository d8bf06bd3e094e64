using Runbox.Sandbox.Cgroups;

namespace Runbox.Sandbox.Tests;

/// <summary>
/// Both versions against folders laid out like cgroupfs (the host only has one of the two). The kernel's
/// side (limits enforced, OOM notification, removal) is covered by the sandbox contract tests.
/// </summary>
public sealed class CgroupfsTests : IDisposable
{
    private static readonly CgroupLimits Limits = new(MemoryBytes: 64L << 20, Processes: 33, Cpus: 1.5, SocketMemoryBytes: 16L << 20);

    /// <summary>/proc/self/cgroup of a process at the root of every hierarchy.</summary>
    private const string AtRoots = "5:devices:/\n4:memory:/\n3:pids:/\n2:cpu,cpuacct:/\n0::/\n";

    /// <summary>/proc/self/cgroup of a systemd service (v1 with Delegate=yes, or v2).</summary>
    private const string InService = "5:devices:/system.slice/runbox.service\n4:memory:/system.slice/runbox.service\n"
        + "3:pids:/system.slice/runbox.service\n2:cpu,cpuacct:/system.slice/runbox.service\n0::/system.slice/runbox.service\n";

    private readonly string _root = Directory.CreateTempSubdirectory("runbox-cgroup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Detect_WithoutUnifiedRoot_ReadsV1Layout()
    {
        Write("memory/runbox/c1/memory.max_usage_in_bytes", "268435456\n");
        Write("cpuacct/runbox/c1/cpuacct.usage", "1500000000\n");
        Write("pids/runbox/c1/pids.peak", "17\n");

        var cgroupfs = Cgroupfs.Detect(_root, AtRoots);

        Assert.Equal("v1", cgroupfs.Version);
        Assert.Equal(new CgroupStats(268435456, 2, TimeSpan.FromSeconds(1.5), 17), cgroupfs.Read("/runbox/c1", oomEvents: 2));
    }

    [Fact]
    public void Detect_WithUnifiedRoot_ReadsV2Layout()
    {
        Write("cgroup.controllers", "cpu memory pids\n");
        Write("runbox/c1/memory.peak", "1048576\n");
        Write("runbox/c1/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n");
        Write("runbox/c1/cpu.stat", "usage_usec 250000\nuser_usec 200000\nsystem_usec 50000\n");
        Write("runbox/c1/pids.peak", "3\n");

        var cgroupfs = Cgroupfs.Detect(_root, AtRoots);

        Assert.Equal("v2", cgroupfs.Version);
        Assert.Equal(new CgroupStats(1048576, 1, TimeSpan.FromMilliseconds(250), 3), cgroupfs.Read("/runbox/c1", oomEvents: 0));
    }

    [Fact]
    public void Read_DeletedCgroup_ReadsZeros()
    {
        Directory.CreateDirectory(Path.Combine(_root, "memory"));

        Assert.Equal(CgroupStats.Empty, Cgroupfs.Detect(_root, AtRoots).Read("/runbox/gone", 0));
    }

    [Fact]
    public void CreateV2_WritesLimitsAndEnablesControllersOnTheWay()
    {
        Write("cgroup.controllers", "cpu memory pids\n");

        Cgroupfs.Detect(_root, AtRoots).Create("/runbox/c1", Limits).OomEvents?.Dispose();

        Assert.Equal("+cpu +memory +pids", Read("cgroup.subtree_control"));
        Assert.Equal("+cpu +memory +pids", Read("runbox/cgroup.subtree_control"));
        Assert.Equal("67108864", Read("runbox/c1/memory.max"));
        Assert.Equal("0", Read("runbox/c1/memory.swap.max"));
        Assert.Equal("33", Read("runbox/c1/pids.max"));
        Assert.Equal("150000 100000", Read("runbox/c1/cpu.max"));
    }

    [Fact]
    public void CreateV1_WritesLimitsAndRegistersTheOomNotification()
    {
        foreach (var controller in (string[])["memory", "pids", "cpu", "cpuacct"])
        {
            Directory.CreateDirectory(Path.Combine(_root, controller));
        }
        Write("memory/runbox/c1/memory.memsw.limit_in_bytes", "");
        Write("memory/runbox/c1/memory.oom_control", "oom_kill_disable 0\n");
        Write("memory/memory.kmem.tcp.limit_in_bytes", "9223372036854771712");

        var cgroup = Cgroupfs.Detect(_root, AtRoots).Create("/runbox/c1", Limits);
        cgroup.OomEvents!.Dispose();

        Assert.Equal("67108864", Read("memory/runbox/c1/memory.limit_in_bytes"));
        // Without it v1 charges no socket buffer to the run (finding 3 of the security review).
        Assert.Equal("16777216", Read("memory/runbox/c1/memory.kmem.tcp.limit_in_bytes"));
        Assert.Equal("67108864", Read("memory/runbox/c1/memory.memsw.limit_in_bytes"));
        Assert.Equal("33", Read("pids/runbox/c1/pids.max"));
        // The quota is in the kernel's default period (100 ms), which is left unwritten.
        Assert.False(File.Exists(Path.Combine(_root, "cpu/runbox/c1/cpu.cfs_period_us")));
        Assert.Equal("150000", Read("cpu/runbox/c1/cpu.cfs_quota_us"));
        // "<eventfd> <fd of memory.oom_control>", as cgroup.event_control takes it.
        Assert.Matches("^[0-9]+ [0-9]+$", Read("memory/runbox/c1/cgroup.event_control"));
    }

    [Fact]
    public void DetectV2_InAServiceCgroup_MovesTheServiceToALeafAndNestsTheRunsBesideIt()
    {
        Write("cgroup.controllers", "cpuset cpu io memory pids\n");
        Write("system.slice/runbox.service/cgroup.controllers", "cpu io memory pids\n");
        Write("system.slice/runbox.service/cgroup.type", "domain\n");
        Write("system.slice/runbox.service/cgroup.procs", Environment.ProcessId + "\n");

        var cgroupfs = Cgroupfs.Detect(_root, InService);
        cgroupfs.Create(cgroupfs.RunsParent + "/c1", Limits).OomEvents?.Dispose();

        Assert.Equal("/system.slice/runbox.service/runbox", cgroupfs.RunsParent);
        Assert.Equal(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), Read("system.slice/runbox.service/service/cgroup.procs"));
        Assert.Equal("+cpu +memory +pids", Read("system.slice/runbox.service/cgroup.subtree_control"));
        Assert.Equal("+cpu +memory +pids", Read("system.slice/runbox.service/runbox/cgroup.subtree_control"));
        Assert.Equal("67108864", Read("system.slice/runbox.service/runbox/c1/memory.max"));
        // Nothing above its own cgroup: that belongs to systemd.
        Assert.False(File.Exists(Path.Combine(_root, "cgroup.subtree_control")));
        Assert.False(File.Exists(Path.Combine(_root, "system.slice/cgroup.subtree_control")));
        Assert.Contains("v2, runs under /system.slice/runbox.service/runbox", cgroupfs.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void DetectV2_ControllersNotDelegated_RefusedNamingThemAndTheFix()
    {
        Write("cgroup.controllers", "cpu memory pids\n");
        Write("system.slice/runbox.service/cgroup.controllers", "memory pids\n");
        Write("system.slice/runbox.service/cgroup.type", "domain\n");

        var refused = Assert.Throws<SandboxException>(() => Cgroupfs.Detect(_root, InService));

        Assert.Contains("the cpu controller is not delegated to this service's cgroup /system.slice/runbox.service", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Delegate=yes", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "system.slice/runbox.service/service")));
    }

    [Fact]
    public void DetectV1_OneCgroupInEveryHierarchy_NestsTheRunsThere()
    {
        Directory.CreateDirectory(Path.Combine(_root, "memory"));

        Assert.Equal("/system.slice/runbox.service/runbox", Cgroupfs.Detect(_root, InService).RunsParent);
    }

    [Fact]
    public void DetectV1_DifferentCgroupsPerHierarchy_RunsUnderTheRootsAndSaysWhy()
    {
        Directory.CreateDirectory(Path.Combine(_root, "memory"));

        var cgroupfs = Cgroupfs.Detect(_root, AtRoots.Replace("4:memory:/", "4:memory:/jobs/a1", StringComparison.Ordinal));

        Assert.Equal("/runbox", cgroupfs.RunsParent);
        Assert.Contains("different cgroups per hierarchy", cgroupfs.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Detect_NoHierarchy_RefusedWithTheFix()
    {
        var refused = Assert.Throws<SandboxException>(() => Cgroupfs.Detect(_root, AtRoots));

        Assert.Contains($"no usable cgroup hierarchy at {_root}", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KillAllV2_WithCgroupKill_KillsTheSubtreeThroughIt()
    {
        Write("cgroup.controllers", "cpu memory pids\n");
        Write("runbox/c1/cgroup.kill", "");

        Cgroupfs.Detect(_root, AtRoots).KillAll("/runbox/c1");

        Assert.Equal("1", Read("runbox/c1/cgroup.kill"));
    }

    private string Read(string relative) => File.ReadAllText(Path.Combine(_root, relative));

    private void Write(string relative, string content)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }
}
