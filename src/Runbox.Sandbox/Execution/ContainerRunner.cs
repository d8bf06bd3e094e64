using System.Diagnostics;
using System.Globalization;
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
}

/// <summary>
/// One container's whole life: bundle → create (with our pipes) → start → watch → stop (TERM, grace,
/// KILL of every process) → exit status → cgroup counters → delete. The container is deleted on every
/// path out of <see cref="RunAsync"/>, exceptions included.
/// </summary>
internal sealed class ContainerRunner(OciRuntime runtime, OciBundleBuilder bundles, CgroupReader cgroups, TimeProvider time, SandboxOptions options)
{
    /// <summary>After init's death the kernel kills the rest of the pid namespace, so the pipes close at once.</summary>
    private static readonly TimeSpan PipeDrainTimeout = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan MinCpuCheckInterval = TimeSpan.FromMilliseconds(10);

    // Runtime invocations (create, start, delete) are short CPU bursts. Hundreds at once on a small
    // machine left Redis and this process so little CPU that heartbeats timed out and leases expired
    // (1,000 concurrent sleep tasks, 2 cores); a few at a time per core finish as fast overall and keep
    // the host responsive. Programs already running are not limited by this, only their launches.
    private readonly SemaphoreSlim _runtimeCalls = new(2 * Environment.ProcessorCount);

    public OciRuntime Runtime => runtime;

    /// <summary>
    /// Runs the container to its end. <paramref name="onCreated"/> is called between create and start
    /// (the runtime probe reads crun's compiled seccomp filter there).
    /// </summary>
    public async Task<ContainerOutcome> RunAsync(
        ContainerSpec spec,
        ReadOnlyMemory<byte> stdin,
        WatchLimits limits,
        IOutputSink sink,
        CancellationToken cancellationToken,
        Action? onCreated = null)
    {
        bundles.Write(spec);
        var pidFile = Path.Combine(spec.BundleDirectory, "pid");
        var logFile = Path.Combine(spec.BundleDirectory, "runtime.log");
        var stop = new TaskCompletionSource<StopReason>(TaskCreationOptions.RunContinuationsAsynchronously);

        await _runtimeCalls.WaitAsync(CancellationToken.None);
        var createHeld = true;
        using var create = StartCreateOrRelease(spec, pidFile, logFile);
        var stdout = new OutputPump(create.StandardOutput.BaseStream, OutputStream.Stdout, limits.OutputBytes, sink, () => stop.TrySetResult(StopReason.OutputLimit));
        var stderr = new OutputPump(create.StandardError.BaseStream, OutputStream.Stderr, limits.OutputBytes, sink, () => stop.TrySetResult(StopReason.OutputLimit));
        var stdinWriter = WriteStdinAsync(create.StandardInput.BaseStream, stdin);
        Task<int?>? exit = null;
        Task? starting = null;
        CgroupStats stats;
        int status;
        TimeSpan wallTime;
        try
        {
            await create.WaitForExitAsync(CancellationToken.None);
            _runtimeCalls.Release();
            createHeld = false;
            if (create.ExitCode != 0)
            {
                throw new SandboxException($"{runtime.Name} create failed with exit code {create.ExitCode}: {ReadLog(logFile)}");
            }
            var pid = int.Parse(File.ReadAllText(pidFile).AsSpan().Trim(), CultureInfo.InvariantCulture);
            // create has exited, so the container's init is now our child (we are a subreaper).
            exit = WaitForExitAsync(pid);
            onCreated?.Invoke();

            // The wall clock starts once `start` may run, not while it queues for a turn.
            await _runtimeCalls.WaitAsync(CancellationToken.None);
            var started = time.GetTimestamp();
            // Waiting starts while `start` is still tearing down: a short program may be done before it is.
            starting = ReleaseAfterAsync(runtime.StartAsync(spec.ContainerId));
            using var wallTimer = time.CreateTimer(_ => stop.TrySetResult(StopReason.WallTime), null, limits.WallTime, Timeout.InfiniteTimeSpan);
            using var cancellation = cancellationToken.Register(() => stop.TrySetResult(StopReason.Cancelled));
            using var watchdogStop = new CancellationTokenSource();
            var watchdog = WatchCpuAsync(spec.CgroupPath, limits.CpuTime, stop, watchdogStop.Token);

            if (await Task.WhenAny(exit, stop.Task, starting) == starting)
            {
                // A failed start throws here; the container never ran, and is deleted below.
                await starting;
            }
            if (await Task.WhenAny(exit, stop.Task) != exit)
            {
                await StopAsync(spec.ContainerId, await stop.Task, exit);
            }
            status = await exit ?? throw new SandboxException($"container {spec.ContainerId} init (pid {pid}) was not our child");
            wallTime = time.GetElapsedTime(started);
            await watchdogStop.CancelAsync();
            await watchdog;
            stats = cgroups.Read(spec.CgroupPath);
        }
        finally
        {
            if (createHeld)
            {
                _runtimeCalls.Release();
            }
            if (exit is { IsCompleted: false })
            {
                await runtime.KillAsync(spec.ContainerId, "KILL", all: true);
            }
            if (starting is not null)
            {
                // Its failure, if any, was thrown above; delete must not race a start still in flight.
                await starting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            await CallRuntimeAsync(() => runtime.DeleteAsync(spec.ContainerId));
            if (exit is not null)
            {
                await exit;
            }
            await stdinWriter;
        }

        try
        {
            await Task.WhenAll(stdout.Completion, stderr.Completion).WaitAsync(PipeDrainTimeout);
        }
        catch (TimeoutException e)
        {
            throw new SandboxException($"output pipes of {spec.ContainerId} stayed open after it was deleted", e);
        }

        var (exitCode, signal) = DescribeStatus(status);
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
        };
    }

    /// <summary>
    /// Exit code and signal name from a wait status. tini reports a child killed by signal N as exit code
    /// 128+N, so such codes are read as that signal; a program that exits with 139 on purpose looks like SIGSEGV.
    /// </summary>
    internal static (int ExitCode, string? Signal) DescribeStatus(int status)
    {
        if (!Libc.Exited(status))
        {
            var signal = Libc.TermSignal(status);
            return (128 + signal, Signals.Name(signal));
        }
        var code = Libc.ExitCode(status);
        return code is > 128 and <= 128 + 31 ? (code, Signals.Name(code - 128)) : (code, null);
    }


    private System.Diagnostics.Process StartCreateOrRelease(ContainerSpec spec, string pidFile, string logFile)
    {
        try
        {
            return runtime.StartCreate(spec.ContainerId, spec.BundleDirectory, pidFile, logFile);
        }
        catch
        {
            _runtimeCalls.Release();
            throw;
        }
    }

    private async Task CallRuntimeAsync(Func<Task> call)
    {
        await _runtimeCalls.WaitAsync(CancellationToken.None);
        await ReleaseAfterAsync(call());
    }

    /// <summary>Gives back the turn taken for <paramref name="call"/> once it ends, however it ends.</summary>
    private async Task ReleaseAfterAsync(Task call)
    {
        try
        {
            await call;
        }
        finally
        {
            _runtimeCalls.Release();
        }
    }

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

    private async Task WatchCpuAsync(string cgroupPath, TimeSpan limit, TaskCompletionSource<StopReason> stop, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var used = cgroups.ReadCpuTime(cgroupPath);
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

    /// <summary>Blocks a dedicated thread in waitpid: .NET has no async wait for a process it did not start.</summary>
    private static Task<int?> WaitForExitAsync(int pid) =>
        Task.Factory.StartNew(() => Libc.WaitForExit(pid), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

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

    private static string ReadLog(string logFile)
    {
        try
        {
            var text = File.ReadAllText(logFile).Trim();
            return text.Length > 0 ? text : "(no runtime log)";
        }
        catch (IOException)
        {
            return "(no runtime log)";
        }
    }
}
