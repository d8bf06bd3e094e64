using Runbox.Core.Seams;
using Runbox.Sandbox.Bundle;
using Runbox.Sandbox.Cgroups;
using Runbox.Sandbox.Native;
using Runbox.Sandbox.Runtime;

namespace Runbox.Sandbox.Execution;

/// <summary>Why the service stopped a container before it ended by itself.</summary>
internal enum StopReason
{
    None,
    WallTime,
    CpuTime,
    OutputLimit,
    Cancelled,
}

/// <summary>Limits the service enforces itself, next to the cgroup and rlimit ones in the bundle.</summary>
internal sealed record WatchLimits(TimeSpan WallTime, TimeSpan CpuTime, long OutputBytes);

internal sealed record ContainerOutcome
{
    public required int ExitCode { get; init; }
    public string? Signal { get; init; }
    public required ReadOnlyMemory<byte> Stdout { get; init; }
    public required ReadOnlyMemory<byte> Stderr { get; init; }
    public bool StdoutTruncated { get; init; }
    public bool StderrTruncated { get; init; }
    public required TimeSpan WallTime { get; init; }
    public required CgroupStats Stats { get; init; }
    public required StopReason Stop { get; init; }

    /// <summary>The container had as many processes as its limit allows at some point: a fork may have failed for it.</summary>
    public bool ReachedProcessLimit { get; init; }
}

/// <summary>
/// One container's whole life: the run's cgroup with its limits → bundle → <c>run</c> (with our pipes) →
/// watch → stop (TERM, grace, KILL of every process) → exit code → the run cgroup's counters → the run
/// cgroup removed. The runtime removes the container and its own cgroup when <c>run</c> ends; this class
/// makes sure it ends on every path out of <see cref="RunAsync"/>, exceptions included. With a
/// <paramref name="placement"/> the runtime starts inside the run cgroup and creates no cgroup of its own.
/// </summary>
internal sealed class ContainerRunner(
    OciRuntime runtime,
    OciBundleBuilder bundles,
    Cgroupfs cgroupfs,
    RunCgroupNames cgroupNames,
    PidFileWatcher pidFiles,
    TimeProvider time,
    SandboxOptions options,
    CgroupPlacement? placement)
{
    /// <summary>After init's death the kernel kills the rest of the pid namespace, so the pipes close at once.</summary>
    private static readonly TimeSpan PipeDrainTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long the runtime may take to exit after its container was killed.</summary>
    private static readonly TimeSpan RuntimeExitTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long the pipes may stay open after the runtime exited before what holds them is killed.</summary>
    private static readonly TimeSpan PipeLingerTimeout = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan MinCpuCheckInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// How often a launch looks for its pid file regardless of inotify (which tells at once, but drops
    /// events when its queue overflows).
    /// </summary>
    private static readonly TimeSpan StartCheckInterval = TimeSpan.FromMilliseconds(100);

    private static readonly Task Never = new TaskCompletionSource().Task;

    // Setting up a container is a short CPU burst in the runtime. Hundreds at once on a small machine left
    // Redis and this process so little CPU that heartbeats timed out and leases expired (1,000 concurrent
    // sleep tasks, 2 cores); a few at a time per core finish as fast overall and keep the host responsive.
    // A launch holds its turn until the program has started; programs already running are not limited.
    private readonly SemaphoreSlim _launches = new(2 * Environment.ProcessorCount);

    public OciRuntime Runtime => runtime;

    /// <summary>
    /// Processes in the run's cgroup besides the program's own: tini, and the runtime itself when it was
    /// started inside the cgroup. The pids limit allows for them, so the program gets all of its own.
    /// </summary>
    private int OwnProcesses { get; } = (placement is null) == runtime.ManagesCgroups
        ? (placement is null ? 1 : 2)
        : throw new ArgumentException("a runtime without a cgroup manager needs a placement, and only it", nameof(placement));

    /// <summary>
    /// Waits for a turn to set up a container (see the launch limit above). A run takes the turn of its first
    /// container before it mounts its /work, so that only runs being set up have a mount on the host
    /// (see RunDirectory); <see cref="RunAsync"/> takes a turn itself when it is given none.
    /// </summary>
    public async Task<LaunchTurn> WaitForLaunchTurnAsync()
    {
        await _launches.WaitAsync(CancellationToken.None);
        return new LaunchTurn(_launches);
    }

    /// <summary>
    /// Runs the container to its end. <paramref name="onStarted"/> is called once the container is up,
    /// before its stdin is written (the runtime probe reads crun's compiled seccomp filter there).
    /// <paramref name="turn"/>, a launch turn the caller already holds, is given up once the container is up.
    /// </summary>
    public async Task<ContainerOutcome> RunAsync(
        ContainerSpec spec,
        ReadOnlyMemory<byte> stdin,
        WatchLimits limits,
        IOutputSink sink,
        CancellationToken cancellationToken,
        Action? onStarted = null,
        LaunchTurn? turn = null)
    {
        var processLimit = spec.Processes + OwnProcesses;
        using var cgroup = cgroupfs.Create(cgroupNames.Rent(), new CgroupLimits(spec.MemoryBytes, processLimit, options.Cpus, options.SocketMemoryBytes, DeviceAllowlist: placement is not null, ContainerCgroup: placement is null ? OciBundleBuilder.ContainerCgroup : null), cgroupNames.Return);
        bundles.Write(spec, cgroup.Path);
        var pidFile = Path.Combine(spec.BundleDirectory, "pid");
        var logFile = Path.Combine(spec.BundleDirectory, "runtime.log");
        var stop = new TaskCompletionSource<StopReason>(TaskCreationOptions.RunContinuationsAsynchronously);

        using var launch = turn ?? await WaitForLaunchTurnAsync();
        using var pidFileWatch = pidFiles.Start(spec.BundleDirectory);
        using var run = StartRun(spec, cgroup, pidFile, logFile);
        // The wall clock starts at the launch, so it never reads less than the program took; the launch
        // turn keeps the setup it includes short (milliseconds) even under load.
        var started = time.GetTimestamp();
        var stdout = new OutputPump(run.StandardOutput.BaseStream, OutputStream.Stdout, limits.OutputBytes, sink, () => stop.TrySetResult(StopReason.OutputLimit));
        var stderr = new OutputPump(run.StandardError.BaseStream, OutputStream.Stderr, limits.OutputBytes, sink, () => stop.TrySetResult(StopReason.OutputLimit));
        var exit = run.WaitForExitAsync(CancellationToken.None);
        Task? stdinWriter = null;
        CgroupStats stats;
        TimeSpan wallTime;
        try
        {
            using var wallTimer = time.CreateTimer(_ => stop.TrySetResult(StopReason.WallTime), null, limits.WallTime, Timeout.InfiniteTimeSpan);
            using var cancellation = cancellationToken.Register(() => stop.TrySetResult(StopReason.Cancelled));
            var up = await WaitForStartAsync(pidFile, exit, pidFileWatch.Written);
            // Watches are a per-user kernel resource: one is held only while its container starts.
            pidFileWatch.Dispose();
            launch.Dispose();
            if (!up)
            {
                throw new SandboxException($"{runtime.Name} run failed with exit code {run.ExitCode}: {ReadLog(logFile)}");
            }
            onStarted?.Invoke();
            stdinWriter = WriteStdinAsync(run.StandardInput.BaseStream, stdin);
            using var watchdogStop = new CancellationTokenSource();
            var watchdog = WatchCpuAsync(cgroup, limits.CpuTime, stop, watchdogStop.Token);

            if (await Task.WhenAny(exit, stop.Task) != exit)
            {
                await StopAsync(spec.ContainerId, await stop.Task, exit);
            }
            await exit;
            wallTime = time.GetElapsedTime(started);
            await watchdogStop.CancelAsync();
            await watchdog;
            stats = cgroup.Read();
        }
        finally
        {
            launch.Dispose();
            if (!exit.IsCompleted)
            {
                await runtime.KillAsync(spec.ContainerId, "KILL", all: true);
                if (await Task.WhenAny(exit, Task.Delay(RuntimeExitTimeout, time)) != exit)
                {
                    // The runtime hangs (it waits on something that never comes): end it and whatever is
                    // left of the run, so the slot is never held for ever.
                    cgroup.KillAll();
                    run.Kill(entireProcessTree: true);
                    await exit;
                }
            }
            if (stdinWriter is not null)
            {
                await stdinWriter;
            }
        }

        if (run.ExitCode != 0 && ReadLog(logFile) is var runtimeError && runtimeError != NoLog)
        {
            // The runtime failed after the program started (or could not start its init): not the program's doing.
            await runtime.DeleteAsync(spec.ContainerId);
            throw new SandboxException($"{runtime.Name} run of {spec.ContainerId} failed with exit code {run.ExitCode}: {runtimeError}");
        }
        var drained = Task.WhenAll(stdout.Completion, stderr.Completion);
        if (await Task.WhenAny(drained, Task.Delay(PipeLingerTimeout, time)) != drained)
        {
            // The runtime is gone and something of the run still holds the pipes: its init outlived the
            // runtime (the OOM killer may pick the runtime, which sits in the run's memory cgroup when
            // started there). Nothing of a run outlives it.
            cgroup.KillAll();
        }
        try
        {
            await drained.WaitAsync(PipeDrainTimeout, time);
        }
        catch (TimeoutException e)
        {
            throw new SandboxException($"output pipes of {spec.ContainerId} stayed open after it ended and its processes were killed", e);
        }

        var (exitCode, signal) = DescribeExit(run.ExitCode);
        return new ContainerOutcome
        {
            ExitCode = exitCode,
            Signal = signal,
            Stdout = stdout.Content,
            Stderr = stderr.Content,
            StdoutTruncated = stdout.Truncated,
            StderrTruncated = stderr.Truncated,
            WallTime = wallTime,
            Stats = stats,
            Stop = stop.Task.IsCompleted ? stop.Task.Result : StopReason.None,
            ReachedProcessLimit = stats.ProcessesPeak >= processLimit,
        };
    }

    /// <summary>
    /// Exit code and signal name from the runtime's exit code, which is the container init's. A program
    /// killed by signal N ends with 128+N (tini reports its child that way, and the runtime its init), so
    /// such codes are read as that signal; a program that exits with 139 on purpose looks like SIGSEGV.
    /// </summary>
    internal static (int ExitCode, string? Signal) DescribeExit(int code) =>
        code is > 128 and <= 128 + 31 ? (code, Signals.Name(code - 128)) : (code, null);

    /// <summary>True once the runtime has written the pid file; false when it exited without doing so.</summary>
    private async Task<bool> WaitForStartAsync(string pidFile, Task exit, Task written)
    {
        while (!File.Exists(pidFile))
        {
            if (exit.IsCompleted)
            {
                return File.Exists(pidFile);
            }
            if (await Task.WhenAny(exit, written, Task.Delay(StartCheckInterval, time)) == written)
            {
                // Signalled but not there (lost events make every launch look again): back to checking.
                written = Never;
            }
        }
        return true;
    }

    private System.Diagnostics.Process StartRun(ContainerSpec spec, RunCgroup cgroup, string pidFile, string logFile) => placement is null
        ? runtime.StartRun(spec.ContainerId, spec.BundleDirectory, pidFile, logFile)
        : placement.Start(cgroup.Path, () => runtime.StartRun(spec.ContainerId, spec.BundleDirectory, pidFile, logFile));

    private async Task StopAsync(string containerId, StopReason reason, Task exit)
    {
        if (reason == StopReason.OutputLimit)
        {
            // Nothing to let finish: the output is already over its cap.
            await runtime.KillAsync(containerId, "KILL", all: true);
            return;
        }
        await runtime.KillAsync(containerId, "TERM", all: false);
        if (await Task.WhenAny(exit, Task.Delay(options.GracePeriod, time)) != exit)
        {
            await runtime.KillAsync(containerId, "KILL", all: true);
        }
    }

    private async Task WatchCpuAsync(RunCgroup cgroup, TimeSpan limit, TaskCompletionSource<StopReason> stop, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var used = cgroup.ReadCpuTime();
                if (used >= limit)
                {
                    stop.TrySetResult(StopReason.CpuTime);
                    return;
                }
                // CPU time grows at most `Cpus` times faster than wall time: nothing can cross the limit
                // before this wait is over, so a run costs a handful of reads, not a polling loop.
                var wait = (limit - used) / options.Cpus;
                await Task.Delay(wait < MinCpuCheckInterval ? MinCpuCheckInterval : wait, time, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The container has exited.
        }
    }

    private static async Task WriteStdinAsync(Stream pipe, ReadOnlyMemory<byte> stdin)
    {
        try
        {
            await using (pipe)
            {
                if (!stdin.IsEmpty)
                {
                    await pipe.WriteAsync(stdin);
                }
            }
        }
        catch (IOException)
        {
            // The program exited without reading all of its input (EPIPE): that is its choice.
        }
    }

    private const string NoLog = "(no runtime log)";

    private static string ReadLog(string logFile)
    {
        try
        {
            var text = File.ReadAllText(logFile).Trim();
            return text.Length > 0 ? text : NoLog;
        }
        catch (IOException)
        {
            return NoLog;
        }
    }
}

/// <summary>A turn to set up a container (<see cref="ContainerRunner.WaitForLaunchTurnAsync"/>); disposing gives it up, once.</summary>
internal sealed class LaunchTurn(SemaphoreSlim launches) : IDisposable
{
    private int _given;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _given, 1) == 0)
        {
            launches.Release();
        }
    }
}
