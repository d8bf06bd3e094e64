using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Execution;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Sandbox.Bundle;
using Runbox.Sandbox.Cgroups;
using Runbox.Sandbox.Execution;
using Runbox.Sandbox.Languages;
using Runbox.Sandbox.Native;
using Runbox.Sandbox.Runtime;

namespace Runbox.Sandbox;

/// <summary>
/// Runs tasks in containers through the OCI runtime CLI (crun, or runc as a drop-in). Starts once
/// (<see cref="InitializeAsync"/>, also done by the first run): removes leftovers of a crashed process,
/// prepares the rootfs, picks the runtime and precompiles the seccomp filter, and detects languages.
/// Must run as root.
/// </summary>
public sealed class OciSandbox : ISandbox, IAsyncDisposable
{
    private const string CompileNote = "\n[runbox] compilation stopped: ";

    private readonly SandboxOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _stateDirectory;
    private readonly Lazy<Task<Started>> _startup;
    private int _disposed;

    public OciSandbox(IOptions<SandboxOptions> options, ILogger<OciSandbox> logger, TimeProvider timeProvider)
    {
        _options = options.Value;
        Validator.ValidateObject(_options, new ValidationContext(_options), validateAllProperties: true);
        _logger = logger;
        _time = timeProvider;
        _stateDirectory = Path.GetFullPath(_options.StateDirectory);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(_stateDirectory));
        ContainerPrefix = "rbx-" + Convert.ToHexStringLower(hash, 0, 4) + "-";
        _startup = new(StartAsync);
    }

    /// <summary>Available once started; throws before.</summary>
    public IReadOnlyList<LanguageInfo> Languages => Current.Catalog.Languages;

    /// <summary><c>crun</c> or <c>runc</c>: the runtime chosen at startup.</summary>
    public string RuntimeName => Current.Runner.Runtime.Name;

    /// <summary>The runtime's own account of its version (<c>crun version 1.8.1</c>).</summary>
    public string RuntimeVersion => Current.RuntimeVersion;

    /// <summary><c>v1</c> or <c>v2</c>: the cgroup hierarchy the runs are limited in.</summary>
    public string CgroupVersion => Current.CgroupVersion;

    /// <summary>The cgroup hierarchy, where the runs' cgroups are, and what the service did to get there.</summary>
    public string Cgroups => Current.Cgroups;

    /// <summary>
    /// Checks, before anything else starts, that this host can run the sandbox: root, and a cgroup hierarchy
    /// with the controllers runs need. On cgroup v2 this also moves the process out of its own cgroup into a
    /// leaf of it, so that processes it starts afterwards (the embedded redis-server) are born there.
    /// </summary>
    /// <exception cref="SandboxException">What is wrong, and how to fix it, in one line.</exception>
    public static void CheckHost()
    {
        if (Libc.GetEffectiveUserId() != 0)
        {
            throw new SandboxException("the sandbox must run as root: it creates namespaces, mounts and cgroups for every run (run it with sudo, or as the systemd service deploy/runbox.service)");
        }
        Cgroupfs.Detect();
    }

    /// <summary>The runtime binary this sandbox calls (a read-only mount of it, normally).</summary>
    internal string RuntimePath => Current.Runner.Runtime.Path;

    /// <summary>Where the run folders are (tests look for leftovers there).</summary>
    internal string RunsDirectory => Current.RunsDirectory;

    /// <summary>The runtime's state folder, its <c>--root</c> (tests list leftover containers with it).</summary>
    internal string RuntimeRoot => Current.Runner.Runtime.StateRoot;

    /// <summary>
    /// Every container, cgroup and run folder of this instance starts with this prefix. It is derived from
    /// the state folder, so two instances with different folders never clean up each other's runs.
    /// </summary>
    public string ContainerPrefix { get; }

    private Started Current => _startup.IsValueCreated && _startup.Value.IsCompletedSuccessfully
        ? _startup.Value.Result
        : throw new InvalidOperationException("The sandbox has not started; await InitializeAsync first.");

    /// <summary>Starts the sandbox once; later calls return the same outcome.</summary>
    /// <exception cref="SandboxException">No usable OCI runtime, or the state folder is in use.</exception>
    public Task InitializeAsync(CancellationToken cancellationToken) => _startup.Value.WaitAsync(cancellationToken);

    public async Task<ExecutionResult> RunAsync(TaskSpec spec, IOutputSink output, CancellationToken cancellationToken)
    {
        var started = await _startup.Value;
        if (cancellationToken.IsCancellationRequested)
        {
            return new ExecutionResult { Verdict = Verdict.Cancelled };
        }
        if (!started.Catalog.TryGet(spec.Language, out var language))
        {
            return ExecutionResult.InternalError($"language '{spec.Language}' is not offered on this host");
        }

        var runId = ContainerPrefix + RandomNumberGenerator.GetHexString(12, lowercase: true);
        // The first container's launch turn comes before /work is mounted (see RunDirectory).
        using var turn = await started.Runner.WaitForLaunchTurnAsync();
        var run = RunDirectory.Create(started.RunsDirectory, runId, started.Uids, spec.Limits.DiskBytes);
        try
        {
            run.WriteFiles(language.Info.SourceFile, spec.Source, spec.Files);
            var result = await CompileAndRunAsync(started.Runner, run, runId, language, spec, output, turn, cancellationToken);
            Log.RunFinished(_logger, runId, spec.Language, result.Verdict.ToWire(), (long)result.WallTime.TotalMilliseconds);
            return result;
        }
        catch
        {
            run.MarkFailed();
            throw;
        }
        finally
        {
            try
            {
                run.Dispose();
            }
            catch (IOException e)
            {
                Log.CleanupFailed(_logger, runId, e);
            }
        }
    }

    /// <summary>
    /// Runs one command (absolute path, cwd /work) through the same lifecycle as a task's run step, with
    /// nothing written to /work: the benchmark measures the sandbox's own cost with it.
    /// </summary>
    internal async Task<TimeSpan> RunCommandAsync(IReadOnlyList<string> command, Core.Limits.Limits limits, CancellationToken cancellationToken)
    {
        var started = await _startup.Value;
        var runId = ContainerPrefix + RandomNumberGenerator.GetHexString(12, lowercase: true);
        using var turn = await started.Runner.WaitForLaunchTurnAsync();
        using var run = RunDirectory.Create(started.RunsDirectory, runId, started.Uids, limits.DiskBytes);
        var outcome = await started.Runner.RunAsync(
            Container(run, runId + "-r", "run", command, limits.MemoryBytes, limits.Processes, limits.DiskBytes, limits.CpuTime),
            ReadOnlyMemory<byte>.Empty,
            new WatchLimits(limits.WallTime, limits.CpuTime, limits.OutputBytes),
            NullOutputSink.Instance,
            cancellationToken,
            run.DetachWork,
            turn);
        return outcome.ExitCode == 0
            ? outcome.WallTime
            : throw new SandboxException($"{string.Join(' ', command)} exited with {outcome.ExitCode}: {Encoding.UTF8.GetString(outcome.Stderr.Span)}");
    }

    public async ValueTask DisposeAsync()
    {
        // The host disposes this once as itself and once as the ISandbox it also is.
        if (!_startup.IsValueCreated || Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        // A failed startup holds nothing; its exception belongs to InitializeAsync and RunAsync.
        await ((Task)_startup.Value).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_startup.Value.IsCompletedSuccessfully)
        {
            var started = _startup.Value.Result;
            UnmountRuntimeBinaries();
            started.PidFiles.Dispose();
            started.Live.UnmountIfIdle();
            started.Uids.Dispose();
            await started.Lock.DisposeAsync();
        }
    }

    private async Task<ExecutionResult> CompileAndRunAsync(
        ContainerRunner runner, RunDirectory run, string runId, Language language, TaskSpec spec, IOutputSink output, LaunchTurn turn, CancellationToken cancellationToken)
    {
        CompileResult? compile = null;
        // The turn taken before /work was mounted belongs to the first container; a second waits for its own.
        LaunchTurn? firstTurn = turn;
        if (language.Compile is { } compileCommand)
        {
            var limits = _options.Compile;
            var outcome = await runner.RunAsync(
                Container(run, runId + "-c", "compile", compileCommand(limits.MemoryBytes), limits.MemoryBytes, limits.Processes, spec.Limits.DiskBytes, limits.CpuTime),
                ReadOnlyMemory<byte>.Empty,
                new WatchLimits(limits.WallTime, limits.CpuTime, limits.OutputBytes),
                NullOutputSink.Instance,
                cancellationToken,
                turn: firstTurn);
            firstTurn = null;
            var compileVerdict = VerdictRules.Decide(outcome.Stop, outcome.Stats.OomKills, outcome.Stats.CpuTime, limits.CpuTime, outcome.ExitCode, outcome.Signal);
            var text = Encoding.UTF8.GetString(outcome.Stdout.Span) + Encoding.UTF8.GetString(outcome.Stderr.Span);
            if (compileVerdict is Verdict.TimeLimit or Verdict.MemoryLimit or Verdict.OutputLimit)
            {
                text += CompileNote + compileVerdict.ToWire() + "\n";
            }
            compile = new CompileResult
            {
                Succeeded = compileVerdict == Verdict.Ok,
                ExitCode = outcome.ExitCode,
                Output = text,
                OutputTruncated = outcome.StdoutTruncated || outcome.StderrTruncated,
                WallTime = outcome.WallTime,
                CpuTime = outcome.Stats.CpuTime,
                MemoryPeakBytes = outcome.Stats.MemoryPeakBytes,
            };
            if (compileVerdict != Verdict.Ok)
            {
                return new ExecutionResult
                {
                    Verdict = compileVerdict == Verdict.Cancelled ? Verdict.Cancelled : Verdict.CompileError,
                    Compile = compile,
                    WallTime = outcome.WallTime,
                    CpuTime = outcome.Stats.CpuTime,
                    MemoryPeakBytes = outcome.Stats.MemoryPeakBytes,
                };
            }
        }

        var limitsOfRun = spec.Limits;
        var result = await runner.RunAsync(
            Container(run, runId + "-r", "run", language.Run(limitsOfRun.MemoryBytes, spec.Args), limitsOfRun.MemoryBytes, limitsOfRun.Processes, limitsOfRun.DiskBytes, limitsOfRun.CpuTime),
            Encoding.UTF8.GetBytes(spec.Stdin),
            new WatchLimits(limitsOfRun.WallTime, limitsOfRun.CpuTime, limitsOfRun.OutputBytes),
            output,
            cancellationToken,
            // The last container of the run is up: /work leaves the host's mount table (see RunDirectory).
            run.DetachWork,
            firstTurn);
        var verdict = VerdictRules.Decide(result.Stop, result.Stats.OomKills, result.Stats.CpuTime, limitsOfRun.CpuTime, result.ExitCode, result.Signal);
        var artifacts = run.CollectArtifacts(_options.MaxArtifacts, _options.MaxArtifactBytes);
        // A failed fork explains many failures that the exit code alone does not.
        var processLimit = verdict != Verdict.Ok && result.ReachedProcessLimit
            ? $"the program reached its process limit ({limitsOfRun.Processes}); forks past it failed"
            : null;
        return new ExecutionResult
        {
            Verdict = verdict,
            Error = processLimit is null || artifacts.Note is null ? processLimit ?? artifacts.Note : $"{processLimit}. {artifacts.Note}",
            ExitCode = result.ExitCode,
            Signal = result.Signal,
            Stdout = Encoding.UTF8.GetString(result.Stdout.Span),
            Stderr = Encoding.UTF8.GetString(result.Stderr.Span),
            StdoutTruncated = result.StdoutTruncated,
            StderrTruncated = result.StderrTruncated,
            WallTime = result.WallTime,
            CpuTime = result.Stats.CpuTime,
            MemoryPeakBytes = result.Stats.MemoryPeakBytes,
            Compile = compile,
            Artifacts = artifacts.Files,
        };
    }

    private static ContainerSpec Container(RunDirectory run, string containerId, string bundle, IReadOnlyList<string> command, long memoryBytes, int processes, long diskBytes, TimeSpan cpuTime) => new()
    {
        Uid = run.Uid,
        CpuTime = cpuTime,
        ContainerId = containerId,
        BundleDirectory = Path.Combine(run.Path, bundle),
        WorkDirectory = run.WorkPath,
        Command = command,
        MemoryBytes = memoryBytes,
        Processes = processes,
        DiskBytes = diskBytes,
    };

    private async Task<Started> StartAsync()
    {
        // Root's alone: it holds the runtime binaries' mounts and the lock, and local users have no business in it.
        Directory.CreateDirectory(_stateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(_stateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        FileStream stateLock;
        try
        {
            // FileShare.None takes an exclusive flock: a second instance on this folder would delete our runs.
            stateLock = new FileStream(Path.Combine(_stateDirectory, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new SandboxException($"the sandbox state folder {_stateDirectory} is in use by another process", e);
        }
        PidFileWatcher? pidFiles = null;
        SandboxUids? uids = null;
        try
        {
            var cgroups = Cgroupfs.Detect();
            var live = LiveFolder.Of(_stateDirectory);
            live.Mount();
            var candidates = ResolveRuntimes();
            await new LeftoverCleaner(ContainerPrefix, cgroups, _logger)
                .CleanAsync(candidates.Select(c => new OciRuntime(c.Name, c.Path, live.RuntimeRoot, _logger)), live.RunsDirectory);
            Directory.CreateDirectory(live.RunsDirectory);

            uids = SandboxUids.Claim(_options.UidRangeStart, _options.UidRangeLength);
            // Versions before kept the rootfs on the host's disk, in the state folder (see SandboxRootfs).
            SandboxRootfs.DeleteTree(Path.Combine(_stateDirectory, "rootfs"));
            var rootfs = SandboxRootfs.Prepare(live.Path, uids.All);
            pidFiles = new PidFileWatcher();
            // Every runner of this instance names its run cgroups from here.
            var names = new RunCgroupNames(cgroups.RunsParent, ContainerPrefix);
            var (runner, runtimeVersion) = await SelectRuntimeAsync(candidates, rootfs, cgroups, names, pidFiles, live, uids);
            var catalog = await LanguageCatalog.DetectAsync(_logger, CancellationToken.None);
            Log.Started(_logger, _stateDirectory, cgroups.Describe(), ContainerPrefix);
            Log.Isolation(_logger, uids.First, uids.First + SandboxUids.BlockSize - 1,
                cgroups.LimitsSocketMemoryApart ? $"at most {_options.SocketMemoryBytes} bytes beside the memory limit (cgroup v1)" : "within the memory limit");
            return new Started(runner, pidFiles, catalog, live, stateLock, uids, cgroups.Version, cgroups.Describe(), runtimeVersion);
        }
        catch
        {
            uids?.Dispose();
            pidFiles?.Dispose();
            UnmountRuntimeBinaries();
            LiveFolder.Of(_stateDirectory).UnmountIfIdle();
            await stateLock.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Picks the first runtime that really runs a container here, checked by running one: crun 1.8.1 refuses
    /// hybrid cgroup hosts that scripts/host-setup has not fixed, which only shows when a container starts.
    /// For crun the check also yields the compiled seccomp filter, so later runs skip compiling it. Where
    /// the host allows it (cgroup v1) crun is tried first started inside each run's cgroup and creating
    /// none (CgroupPlacement), then managing the cgroups itself.
    /// </summary>
    private async Task<(ContainerRunner Runner, string Version)> SelectRuntimeAsync(
        IReadOnlyList<(string Name, string Path)> candidates, SandboxRootfs rootfs, Cgroupfs cgroups, RunCgroupNames names, PidFileWatcher pidFiles, LiveFolder live, SandboxUids uids)
    {
        var reasons = new List<string>();
        foreach (var (name, path) in candidates)
        {
            var runtime = ReadOnlyRuntime(name, path, live.RuntimeRoot);
            var placement = runtime.CanRunWithoutCgroupManager ? cgroups.CreatePlacement() : null;
            (OciRuntime, CgroupPlacement?)[] ways = placement is null ? [(runtime, null)] : [(runtime.WithoutCgroupManager(), placement), (runtime, null)];
            foreach (var (way, wayPlacement) in ways)
            {
                try
                {
                    var runner = await ProveAsync(way, rootfs, cgroups, names, pidFiles, wayPlacement, live.RunsDirectory, uids);
                    var why = _options.Runtime != SandboxOptions.AutoRuntime ? "as configured; a test container ran with seccomp active"
                        : reasons.Count == 0 ? "preferred, and a test container ran with seccomp active"
                        : "fallback, a test container ran with seccomp active; " + string.Join("; ", reasons);
                    why += wayPlacement is null ? "; it manages each container's cgroups" : "; containers start inside their run cgroup, the runtime creates none";
                    var version = await way.VersionAsync();
                    Log.RuntimeSelected(_logger, name, path, version, why);
                    return (runner, version);
                }
                // cgroupfs refusing a placement (no writable devices hierarchy, say) rules out that way only.
                catch (Exception e) when (e is SandboxException or IOException or UnauthorizedAccessException)
                {
                    var what = wayPlacement is null ? name : name + " inside the run cgroup";
                    Log.RuntimeRejected(_logger, what, e.Message);
                    reasons.Add($"{what} failed: {e.Message}");
                }
            }
        }
        throw new SandboxException(candidates.Count == 0
            ? $"no OCI runtime found for '{_options.Runtime}' (install crun or runc: scripts/host-setup)"
            : "no OCI runtime can run containers on this host: " + string.Join("; ", reasons));
    }

    /// <summary>A runner for the runtime once test containers ran on it (with the precompiled seccomp filter where it takes one).</summary>
    /// <exception cref="SandboxException">A test container failed.</exception>
    /// <exception cref="IOException">cgroupfs or the run folder refused a step.</exception>
    private async Task<ContainerRunner> ProveAsync(
        OciRuntime runtime, SandboxRootfs rootfs, Cgroupfs cgroups, RunCgroupNames names, PidFileWatcher pidFiles, CgroupPlacement? placement, string runsDirectory, SandboxUids uids)
    {
        var compiled = await ProbeAsync(runtime, new OciBundleBuilder(rootfs, _options, seccompBpf: null), cgroups, names, pidFiles, placement, runsDirectory, uids);
        var runner = new ContainerRunner(runtime, new OciBundleBuilder(rootfs, _options, compiled), cgroups, names, pidFiles, _time, _options, placement);
        if (compiled is not null)
        {
            // Prove that this crun honours the annotation before relying on it.
            await ProbeAsync(runner, runsDirectory, uids);
            Log.SeccompPrecompiled(_logger, compiled.Length);
        }
        else if (runtime.TakesPrecompiledSeccomp)
        {
            Log.SeccompNotPrecompiled(_logger, runtime.Name);
        }
        return runner;
    }

    /// <summary>The runtime called through a read-only mount of its binary (see ReadOnlyBinary), or in place if that fails.</summary>
    private OciRuntime ReadOnlyRuntime(string name, string path, string root)
    {
        try
        {
            return new OciRuntime(name, ReadOnlyBinary.Mount(path, name, _stateDirectory), root, _logger, readOnlyBinary: true);
        }
        catch (IOException e)
        {
            Log.RuntimeBinaryNotMounted(_logger, name, e.Message);
            return new OciRuntime(name, path, root, _logger);
        }
    }

    private void UnmountRuntimeBinaries()
    {
        var folder = Path.Combine(_stateDirectory, "bin");
        if (Directory.Exists(folder))
        {
            foreach (var binary in Directory.EnumerateFiles(folder))
            {
                ReadOnlyBinary.Unmount(binary);
            }
        }
    }

    /// <summary>Runs a test container; with crun returns the seccomp filter crun compiled for it.</summary>
    private async Task<byte[]?> ProbeAsync(
        OciRuntime runtime, OciBundleBuilder builder, Cgroupfs cgroups, RunCgroupNames names, PidFileWatcher pidFiles, CgroupPlacement? placement, string runsDirectory, SandboxUids uids)
    {
        byte[]? compiled = null;
        var runner = new ContainerRunner(runtime, builder, cgroups, names, pidFiles, _time, _options, placement);
        await ProbeAsync(runner, runsDirectory, uids, containerId =>
        {
            if (runtime.TakesPrecompiledSeccomp)
            {
                // crun keeps the filter it compiled in its state folder for `crun exec` while the container
                // lives; the probe waits for its stdin, written after this.
                var file = Path.Combine(runtime.StateRoot, containerId, "seccomp.bpf");
                compiled = File.Exists(file) ? File.ReadAllBytes(file) : null;
            }
        });
        return compiled;
    }

    private async Task ProbeAsync(ContainerRunner runner, string runsDirectory, SandboxUids uids, Action<string>? onStarted = null)
    {
        var probeId = ContainerPrefix + "probe-" + RandomNumberGenerator.GetHexString(8, lowercase: true);
        using var run = RunDirectory.Create(runsDirectory, probeId, uids, 1 << 20);
        var outcome = await runner.RunAsync(
            // Checks that seccomp filters it, then lives until its (empty) stdin closes.
            Container(run, probeId, "probe", ["/bin/sh", "-c", "grep -qE '^Seccomp:[[:space:]]+2$' /proc/self/status && cat >/dev/null"], 64L << 20, 8, 1 << 20, TimeSpan.FromSeconds(5)),
            ReadOnlyMemory<byte>.Empty,
            new WatchLimits(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10), 4096),
            NullOutputSink.Instance,
            CancellationToken.None,
            onStarted is null ? null : () => onStarted(probeId));
        if (outcome.ExitCode != 0)
        {
            throw new SandboxException($"test container exited with {outcome.ExitCode} (seccomp not active?): {Encoding.UTF8.GetString(outcome.Stderr.Span)}");
        }
    }

    private List<(string Name, string Path)> ResolveRuntimes()
    {
        if (Path.IsPathFullyQualified(_options.Runtime))
        {
            var name = Path.GetFileName(_options.Runtime).Contains(OciRuntime.Crun, StringComparison.Ordinal) ? OciRuntime.Crun : OciRuntime.Runc;
            return File.Exists(_options.Runtime) ? [(name, _options.Runtime)] : [];
        }
        string[] names = _options.Runtime == SandboxOptions.AutoRuntime ? [OciRuntime.Crun, OciRuntime.Runc] : [_options.Runtime];
        var found = new List<(string, string)>();
        foreach (var name in names)
        {
            if (FindOnPath(name) is { } path)
            {
                found.Add((name, path));
            }
            else
            {
                Log.RuntimeRejected(_logger, name, "not installed (scripts/host-setup installs it)");
            }
        }
        return found;
    }

    private static string? FindOnPath(string name)
    {
        // root's PATH normally has the sbin folders (runc is in /usr/sbin); a service's PATH may not.
        var folders = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
        return folders.Select(folder => Path.Combine(folder, name)).FirstOrDefault(File.Exists);
    }

    private sealed record Started(
        ContainerRunner Runner, PidFileWatcher PidFiles, LanguageCatalog Catalog, LiveFolder Live, FileStream Lock, SandboxUids Uids,
        string CgroupVersion, string Cgroups, string RuntimeVersion)
    {
        public string RunsDirectory => Live.RunsDirectory;
    }
}
