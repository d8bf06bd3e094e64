using System.Globalization;
using Runbox.Sandbox.Cgroups;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Tests;

/// <summary>On this host's real cgroup v1 hierarchies (the tests run as root).</summary>
public sealed class CgroupPlacementTests
{
    private static readonly CgroupLimits Limits = new(MemoryBytes: 256L << 20, Processes: 64, Cpus: 1, DeviceAllowlist: true);

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

    private static string CgroupsOf(int tid) => File.ReadAllText($"/proc/self/task/{tid.ToString(CultureInfo.InvariantCulture)}/cgroup");
}
