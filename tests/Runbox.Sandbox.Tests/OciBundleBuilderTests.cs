using System.Text.Json;
using Runbox.Sandbox.Bundle;

namespace Runbox.Sandbox.Tests;

public sealed class OciBundleBuilderTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("runbox-bundle-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public void Write_WithPrecompiledFilter_UsesAnnotationInsteadOfProfile()
    {
        var config = Write(seccompBpf: [1, 2, 3]);

        Assert.Equal("AQID", config.GetProperty("annotations").GetProperty(OciBundleBuilder.SeccompBpfAnnotation).GetString());
        Assert.False(config.GetProperty("linux").TryGetProperty("seccomp", out _));
    }

    [Fact]
    public void Write_WithoutPrecompiledFilter_EmbedsProfileThatRefusesUnshare()
    {
        var seccomp = Write(seccompBpf: null).GetProperty("linux").GetProperty("seccomp");

        Assert.Equal("SCMP_ACT_ERRNO", seccomp.GetProperty("defaultAction").GetString());
        var allowed = seccomp.GetProperty("syscalls").EnumerateArray()
            .Where(rule => rule.GetProperty("action").GetString() == "SCMP_ACT_ALLOW" && !rule.TryGetProperty("args", out _))
            .SelectMany(rule => rule.GetProperty("names").EnumerateArray().Select(n => n.GetString()))
            .ToHashSet();
        Assert.Contains("read", allowed);
        Assert.DoesNotContain("unshare", allowed);
        Assert.DoesNotContain("ptrace", allowed);
        Assert.DoesNotContain("clone", allowed);
    }

    [Fact]
    public void Write_AnyRun_RunsUnprivilegedUnderTiniInsideTheRunCgroup()
    {
        var config = Write(seccompBpf: null);

        var process = config.GetProperty("process");
        var args = process.GetProperty("args").EnumerateArray().Select(a => a.GetString()).ToList();
        // The static build where the tini package has it (Debian's does).
        Assert.Equal(File.Exists("/usr/bin/tini-static") ? "/usr/bin/tini-static" : "/usr/bin/tini", args[0]);
        Assert.Equal(["--", "/usr/bin/python3", "main.py"], args.Skip(1));
        Assert.Equal(1879048193, process.GetProperty("user").GetProperty("uid").GetInt32());
        Assert.Equal(1879048193, process.GetProperty("user").GetProperty("gid").GetInt32());
        Assert.True(process.GetProperty("noNewPrivileges").GetBoolean());
        Assert.Empty(process.GetProperty("capabilities").GetProperty("bounding").EnumerateArray());
        Assert.True(config.GetProperty("root").GetProperty("readonly").GetBoolean());
        // The limits are on the run's cgroup (Cgroupfs); the container's cgroup sits beneath it with no
        // limits of its own, so an OOM kill is counted where the service can still read it.
        Assert.Equal("/runbox/rbx-test/ctr", config.GetProperty("linux").GetProperty("cgroupsPath").GetString());
        Assert.Equal(["devices"], config.GetProperty("linux").GetProperty("resources").EnumerateObject().Select(p => p.Name));
        Assert.Contains(config.GetProperty("linux").GetProperty("namespaces").EnumerateArray(), ns => ns.GetProperty("type").GetString() == "network");
        var usr = config.GetProperty("mounts").EnumerateArray().Single(m => m.GetProperty("destination").GetString() == "/usr");
        // Recursive: a host mount below /usr is read-only, nosuid and nodev too (finding 10 of the security review).
        Assert.Equal(["rbind", "rro", "rnosuid", "rnodev"], usr.GetProperty("options").EnumerateArray().Select(o => o.GetString()));
        Assert.DoesNotContain(config.GetProperty("mounts").EnumerateArray(), m => m.GetProperty("destination").GetString() == "/sys");
        // The kernel's backstop if the service dies mid-run: 1.5 s rounds up to 2, plus 2 s of slack.
        var cpu = config.GetProperty("process").GetProperty("rlimits").EnumerateArray().Single(r => r.GetProperty("type").GetString() == "RLIMIT_CPU");
        Assert.Equal(4, cpu.GetProperty("soft").GetInt64());
        Assert.Equal(5, cpu.GetProperty("hard").GetInt64());
    }

    private JsonElement Write(byte[]? seccompBpf)
    {
        var rootfs = SandboxRootfs.Prepare(_state, [1879048192, 1879048193]);
        var builder = new OciBundleBuilder(rootfs, new SandboxOptions(), seccompBpf);
        var path = builder.Write(new ContainerSpec
        {
            ContainerId = "rbx-test",
            BundleDirectory = Path.Combine(_state, "bundle"),
            WorkDirectory = Path.Combine(_state, "work"),
            Command = ["/usr/bin/python3", "main.py"],
            Uid = 1879048193,
            MemoryBytes = 64L << 20,
            Processes = 33,
            DiskBytes = 8L << 20,
            CpuTime = TimeSpan.FromMilliseconds(1500),
        }, "/runbox/rbx-test");
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.Clone();
    }
}
