using System.Diagnostics;
using System.Globalization;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Cgroups;

/// <summary>
/// Starts the runtime inside a run's cgroup, so that the runtime need not manage cgroups at all
/// (<c>crun --cgroup-manager=disabled</c>): the container stays in the cgroups it began in.
/// </summary>
/// <remarks>
/// <para>
/// Why: on cgroup v1 a runtime that manages cgroups creates and removes one for every container in each
/// of the host's hierarchies (eleven here), with a freeze on the way out. That was about 2 ms of CPU per
/// container, a tenth of all CPU with 1,000 containers starting at once on two cores (docs/benchmarks.md).
/// The service needs five of them (memory, pids, cpu, cpuacct and devices) and creates those anyway.
/// </para>
/// <para>
/// How: on v1 every thread has cgroups of its own, and a process begins in those of the thread that
/// forked it. <see cref="Enter"/> moves the calling thread into the run's cgroups for the moment it starts
/// the runtime, and moves it back on dispose; the run cgroup then also holds the device allowlist that the
/// runtime would have written (Cgroupfs, <see cref="CgroupLimits.DeviceAllowlist"/>). Nothing
/// may await in between, so that it is the same thread. v2 keeps a process's threads in one cgroup, so
/// there the runtime manages the container's cgroup (one directory on the unified hierarchy).
/// </para>
/// <para>
/// What it changes for a run: the runtime process itself is a member of the run's cgroup, so the pids
/// limit counts it (the caller allows for it), and the run's CPU time and memory peak include the
/// runtime's setup of the container: measured on a hello-world task, 3-4 ms more CPU time and 0.4-0.5 MiB
/// more peak memory than when the runtime created the container's cgroup itself.
/// </para>
/// </remarks>
internal sealed class CgroupPlacement
{
    private readonly string _root;
    private readonly IReadOnlyList<string> _controllers;

    /// <summary>For a v1 cgroupfs at <paramref name="root"/> whose run cgroups exist in the hierarchies of <paramref name="controllers"/>.</summary>
    public CgroupPlacement(string root, IReadOnlyList<string> controllers)
    {
        _root = root;
        _controllers = controllers;
    }

    /// <summary>
    /// Moves the calling thread into the run cgroup at <paramref name="runCgroupPath"/>; disposing the
    /// result, on the same thread, moves it back to where it was, with any thread created meanwhile.
    /// </summary>
    /// <exception cref="IOException">cgroupfs refused the move (the thread is back where it was).</exception>
    public Scope Enter(string runCgroupPath)
    {
        var tid = Libc.GetThreadId();
        var home = HomeTasksFiles(tid);
        var scope = new Scope(tid, home, Path.Combine(_root, _controllers[0], runCgroupPath.TrimStart('/'), "tasks"));
        try
        {
            foreach (var controller in _controllers)
            {
                WriteThread(Path.Combine(_root, controller, runCgroupPath.TrimStart('/'), "tasks"), tid);
            }
        }
        catch
        {
            scope.Dispose();
            throw;
        }
        return scope;
    }

    /// <summary>
    /// Starts a process with <paramref name="start"/> inside the run cgroup at <paramref name="runCgroupPath"/>
    /// (see <see cref="Enter"/>) and returns it once the calling thread is back home. Should the way home
    /// fail, the process is killed and disposed before the error goes up: a caller that gets no process
    /// could neither end it nor close its pipes.
    /// </summary>
    /// <exception cref="IOException">cgroupfs refused a move.</exception>
    public Process Start(string runCgroupPath, Func<Process> start)
    {
        Process process;
        // Synchronous from here to the end: the thread that entered the cgroup must leave it.
        var scope = Enter(runCgroupPath);
        try
        {
            process = start();
        }
        catch
        {
            scope.Dispose();
            throw;
        }
        try
        {
            scope.Dispose();
        }
        catch
        {
            process.Kill();
            process.Dispose();
            throw;
        }
        return process;
    }

    /// <summary>The <c>tasks</c> files of the cgroups the thread is in now, per hierarchy this placement moves it in.</summary>
    private List<string> HomeTasksFiles(int tid)
    {
        // Lines read "4:memory:/some/path" (v1) or "0::/path" (the v2 hierarchy, which is not moved).
        var files = new List<string>();
        var path = $"/proc/self/task/{tid.ToString(CultureInfo.InvariantCulture)}/cgroup";
        foreach (var line in (Libc.ReadFile(path) ?? throw new FileNotFoundException("no such thread", path)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3 || parts[1].Length == 0)
            {
                continue;
            }
            foreach (var controller in parts[1].Split(','))
            {
                if (_controllers.Contains(controller))
                {
                    files.Add(Path.Combine(_root, controller, parts[2].TrimStart('/'), "tasks"));
                }
            }
        }
        return files;
    }

    private static void WriteThread(string tasksFile, int tid) =>
        Libc.WriteFile(tasksFile, tid.ToString(CultureInfo.InvariantCulture));

    /// <summary>The calling thread's stay in a run cgroup.</summary>
    public sealed class Scope(int tid, List<string> home, string runTasksFile) : IDisposable
    {
        /// <exception cref="InvalidOperationException">Called on another thread than Enter: the code in between awaited, and what it started may not be in the run cgroup.</exception>
        public void Dispose()
        {
            foreach (var tasks in home)
            {
                WriteThread(tasks, tid);
            }
            // A thread begins in the cgroups of the thread that created it, and the runtime creates some on
            // demand from whichever thread needs one (the JIT's tier-1 worker when a method's call count is
            // reached, a thread-pool worker when work is queued). One created in the scope would stay in
            // the run cgroup: under the program's limits, its memory charged there, the cgroup never
            // removable. Any such thread goes home too.
            foreach (var straggler in ThreadsOfThisProcess(runTasksFile))
            {
                try
                {
                    foreach (var tasks in home)
                    {
                        WriteThread(tasks, straggler);
                    }
                }
                catch (IOException) when (!IsThreadOfThisProcess(straggler))
                {
                    // It ended in the meantime.
                }
            }
            if (Libc.GetThreadId() != tid)
            {
                throw new InvalidOperationException("a cgroup placement must end on the thread that entered it");
            }
        }

        private static bool IsThreadOfThisProcess(int tid) =>
            Directory.Exists("/proc/self/task/" + tid.ToString(CultureInfo.InvariantCulture));

        private static IEnumerable<int> ThreadsOfThisProcess(string tasksFile)
        {
            foreach (var line in (Libc.ReadFile(tasksFile) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var member) && IsThreadOfThisProcess(member))
                {
                    yield return member;
                }
            }
        }
    }
}
