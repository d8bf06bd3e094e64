using Runbox.Sandbox.Cgroups;

namespace Runbox.Sandbox.Tests;

/// <summary>Both readers against folders laid out like cgroupfs (the host only has one of the two versions).</summary>
public sealed class CgroupReaderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("runbox-cgroup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Detect_WithoutUnifiedRoot_ReadsV1Layout()
    {
        Write("memory/runbox/c1/memory.max_usage_in_bytes", "268435456\n");
        Write("memory/runbox/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        Write("cpuacct/runbox/c1/cpuacct.usage", "1500000000\n");
        Write("pids/runbox/c1/pids.events", "max 17\n");

        var reader = CgroupReader.Detect(_root);

        Assert.Equal("v1", reader.Version);
        Assert.Equal(new CgroupStats(268435456, 2, TimeSpan.FromSeconds(1.5), 17), reader.Read("/runbox/c1"));
    }

    [Fact]
    public void Detect_WithUnifiedRoot_ReadsV2Layout()
    {
        Write("cgroup.controllers", "cpu memory pids\n");
        Write("runbox/c1/memory.peak", "1048576\n");
        Write("runbox/c1/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n");
        Write("runbox/c1/cpu.stat", "usage_usec 250000\nuser_usec 200000\nsystem_usec 50000\n");
        Write("runbox/c1/pids.events", "max 0\n");

        var reader = CgroupReader.Detect(_root);

        Assert.Equal("v2", reader.Version);
        Assert.Equal(new CgroupStats(1048576, 1, TimeSpan.FromMilliseconds(250), 0), reader.Read("/runbox/c1"));
    }

    [Fact]
    public void Read_DeletedCgroup_ReadsZeros() =>
        Assert.Equal(CgroupStats.Empty, CgroupReader.Detect(_root).Read("/runbox/gone"));

    private void Write(string relative, string content)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }
}
