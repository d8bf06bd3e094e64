using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runbox.Core.Execution;
using Runbox.Core.Limits;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Sandbox.Tests;

/// <summary>
/// One real sandbox per runtime, shared by a test class. It is started with the runtime named explicitly,
/// so a missing or broken crun/runc fails every test of its class instead of skipping them.
/// </summary>
public abstract class SandboxFixture(string runtime) : IAsyncLifetime
{
    private OciSandbox? _sandbox;

    public string Runtime { get; } = runtime;

    /// <summary>A fixed folder per runtime, so a crashed earlier test run is cleaned up by the next one.</summary>
    public string StateDirectory { get; } = Path.Combine(Path.GetTempPath(), "runbox-sandbox-tests", runtime);

    public OciSandbox Sandbox => _sandbox ?? throw new InvalidOperationException("fixture not initialized");

    public async ValueTask InitializeAsync()
    {
        _sandbox = CreateSandbox(StateDirectory);
        await _sandbox.InitializeAsync(CancellationToken.None);
    }

    public OciSandbox CreateSandbox(string stateDirectory)
    {
        var options = new SandboxOptions
        {
            Runtime = Runtime,
            StateDirectory = stateDirectory,
            GracePeriod = TimeSpan.FromMilliseconds(300),
        };
        return new OciSandbox(Options.Create(options), NullLogger<OciSandbox>.Instance, TimeProvider.System);
    }

    public async ValueTask DisposeAsync()
    {
        if (_sandbox is not null)
        {
            await _sandbox.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }

    public Task<ExecutionResult> RunAsync(string language, string source, string stdin = "", Limits? limits = null, IOutputSink? sink = null) =>
        Sandbox.RunAsync(Spec(language, source, stdin, limits), sink ?? NullOutputSink.Instance, TestContext.Current.CancellationToken);

    public static TaskSpec Spec(string language, string source, string stdin = "", Limits? limits = null) =>
        new() { User = "test", Language = language, Source = source, Stdin = stdin, Limits = limits ?? TestLimits };

    /// <summary>Short limits keep the suite fast; tests about a limit set their own.</summary>
    public static Limits TestLimits { get; } = new()
    {
        WallTime = TimeSpan.FromSeconds(10),
        CpuTime = TimeSpan.FromSeconds(10),
        MemoryBytes = 256L << 20,
        Processes = 64,
        OutputBytes = 64 << 10,
        DiskBytes = 16L << 20,
    };

    /// <summary>Containers, cgroups, run folders and mounts of this sandbox that still exist.</summary>
    /// <summary>
    /// The folder holding this host's run cgroups in the hierarchy of <paramref name="controller"/> (cgroup v1),
    /// or in the unified hierarchy (v2), beneath the cgroup of this process as the sandbox nests them.
    /// </summary>
    public static string RunCgroupParent(string controller)
    {
        var cgroups = Cgroups.Cgroupfs.Detect();
        return cgroups.Version == "v1"
            ? Path.Combine(Cgroups.Cgroupfs.DefaultRoot, controller, cgroups.RunsParent.TrimStart('/'))
            : Path.Combine(Cgroups.Cgroupfs.DefaultRoot, cgroups.RunsParent.TrimStart('/'));
    }

    /// <summary>The parent of the run cgroups as cgroup paths name it (<c>/runbox</c> or <c>/system.slice/x.service/runbox</c>).</summary>
    public static string RunCgroupPath => Cgroups.Cgroupfs.Detect().RunsParent;

    public Task<IReadOnlyList<string>> LeftoversAsync() => LeftoversAsync(Sandbox.ContainerPrefix, StateDirectory);

    public async Task<IReadOnlyList<string>> LeftoversAsync(string prefix, string stateDirectory)
    {
        var leftovers = new List<string>();
        // The sandbox keeps its runs and the runtime's state (--root) in live/ of its state folder.
        var live = Path.Combine(stateDirectory, "live");
        var root = Path.Combine(live, "runtime");
        if (Directory.Exists(root))
        {
            var list = Process.Start(new ProcessStartInfo(Runtime, ["--root", root, "list", "--quiet"]) { RedirectStandardOutput = true })!;
            var ids = await list.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            await list.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, list.ExitCode);
            leftovers.AddRange(ids.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(id => id.StartsWith(prefix, StringComparison.Ordinal)).Select(id => "container " + id));
        }
        var cgroups = Cgroups.Cgroupfs.Detect();
        foreach (var parent in cgroups.Directories(cgroups.RunsParent))
        {
            if (Directory.Exists(parent))
            {
                leftovers.AddRange(Directory.EnumerateDirectories(parent, prefix + "*").Select(dir => "cgroup " + dir));
            }
        }
        var runs = Path.Combine(live, "runs");
        if (Directory.Exists(runs))
        {
            leftovers.AddRange(Directory.EnumerateFileSystemEntries(runs).Select(dir => "run folder " + dir));
        }
        var mounts = await File.ReadAllTextAsync("/proc/self/mountinfo", TestContext.Current.CancellationToken);
        if (mounts.Contains(runs + "/", StringComparison.Ordinal))
        {
            leftovers.Add("a /work mount under " + runs);
        }
        return leftovers;
    }
}

public sealed class CrunFixture() : SandboxFixture("crun");

public sealed class RuncFixture() : SandboxFixture("runc");
