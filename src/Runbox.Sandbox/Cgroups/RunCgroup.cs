namespace Runbox.Sandbox.Cgroups;

/// <summary>
/// One run's cgroup, created with its limits before the container starts and removed (with the container
/// cgroup the runtime made beneath it, if still there) on dispose; <paramref name="removed"/> is called
/// once it is gone (the path's name may then go to another run, see RunCgroupNames).
/// </summary>
internal sealed class RunCgroup(Cgroupfs cgroupfs, string path, Action<string>? removed = null) : IDisposable
{
    private bool _removed;

    /// <summary>e.g. <c>/runbox/rbx-…</c>, as cgroup paths are written in config.json.</summary>
    public string Path { get; } = path;

    internal OomEventCounter? OomEvents { get; set; }

    public CgroupStats Read() => cgroupfs.Read(Path, OomEvents?.Read() ?? 0);

    public TimeSpan ReadCpuTime() => cgroupfs.ReadCpuTime(Path);

    /// <summary>SIGKILL to every process of the run (see <see cref="Cgroupfs.KillAll"/>).</summary>
    public void KillAll() => cgroupfs.KillAll(Path);

    /// <exception cref="IOException">A cgroup could not be removed (a process still in it).</exception>
    public void Dispose()
    {
        if (_removed)
        {
            return;
        }
        OomEvents?.Dispose();
        cgroupfs.Remove(Path);
        _removed = true;
        removed?.Invoke(Path);
    }
}
