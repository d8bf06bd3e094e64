using System.Diagnostics;
using System.Globalization;
using Runbox.Sandbox.Cgroups;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Tests;

/// <summary>On this host's real cgroup v1 hierarchies (the tests run as root).</summary>
public sealed class CgroupPlacementTests
{
    private static readonly CgroupLimits Limits = new(MemoryBytes: 256L << 20, Processes: 64, Cpus: 1, SocketMemoryBytes: 16L << 20, DeviceAllowlist: true);

    /// <summary>
    /// Regression: a thread created while the launching thread sat in a run cgroup (the runtime makes its
    /// tier-1 JIT and thread-pool workers on demand) began there and stayed, under the program's limits,
    /// and the run cgroup could not be removed.
    /// </summary>
    [Fact]
    public void Scope_ThreadCreatedInside_GoesHomeWithTheCaller()
    {
        var cgroups = Cgroupfs.Detect();
        Assert.Equal("v1", cgroups.Version);
        var path = "/runbox/test-placement-" + Guid.NewGuid().ToString("N")[..12];
        var cgroup = cgroups.Create(path, Limits);
        using var release = new ManualResetEventSlim();
        var tid = 0;
        var straggler = new Thread(() =>
        {
            Volatile.Write(ref tid, Libc.GetThreadId());
            release.Wait();
        });
        try
        {
            using (cgroups.CreatePlacement()!.Enter(path))
            {
                straggler.Start();
                SpinWait.SpinUntil(() => Volatile.Read(ref tid) != 0);
                Assert.Contains(path, CgroupsOf(tid), StringComparison.Ordinal);
            }

            Assert.DoesNotContain(path, CgroupsOf(tid), StringComparison.Ordinal);
            Assert.DoesNotContain(path, CgroupsOf(Libc.GetThreadId()), StringComparison.Ordinal);
        }
        finally
        {
            release.Set();
            straggler.Join();
            cgroup.Dispose();
        }
    }

    /// <summary>
    /// Regression: when the way home failed after the runtime had started, the process was dropped, still
    /// running, with its pipes open until finalization. A cgroupfs laid out in a folder, with the run
    /// cgroup but none of the thread's home cgroups, makes the way home fail.
    /// </summary>
    [Fact]
    public void Start_WayHomeFails_TheStartedProcessIsKilled()
    {
        var root = Directory.CreateTempSubdirectory("runbox-placement-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "memory", "runbox", "run"));
            var placement = new CgroupPlacement(root, ["memory"]);
            var pid = 0;

            Assert.ThrowsAny<IOException>(() => placement.Start("/runbox/run", () =>
            {
                var process = Process.Start(new ProcessStartInfo("/bin/sleep", ["30"]) { RedirectStandardOutput = true })!;
                pid = process.Id;
                return process;
            }));

            Assert.NotEqual(0, pid);
            Assert.True(SpinWait.SpinUntil(() => HasEnded(pid), TimeSpan.FromSeconds(5)), $"process {pid} still runs");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Gone, or a zombie waiting to be reaped.</summary>
    private static bool HasEnded(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            // Not found, or "No such process" (ESRCH) when it was reaped between the path lookup and the read.
            return true;
        }
    }

    private static string CgroupsOf(int tid) => File.ReadAllText($"/proc/self/task/{tid.ToString(CultureInfo.InvariantCulture)}/cgroup");
}
