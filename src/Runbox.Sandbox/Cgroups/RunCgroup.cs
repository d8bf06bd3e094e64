namespace Runbox.Sandbox.Cgroups;

/// <summary>
/// One run's cgroup, created with its limits before the container starts and removed (with the container
/// cgroup the runtime made beneath it, if still there) on dispose.
/// </summary>
internal sealed class RunCgroup(Cgroupfs cgroupfs, string path) : IDisposable
{
    /// <summary>e.g. <c>/runbox/rbx-…</c>, as cgroup paths are written in config.json.</summary>
    public string Path { get; } = path;

    internal OomEventCounter? OomEvents { get; set; }

    public CgroupStats Read() => cgroupfs.Read(Path, OomEvents?.Read() ?? 0);

    public TimeSpan ReadCpuTime() => cgroupfs.ReadCpuTime(Path);

    /// <exception cref="IOException">A cgroup could not be removed (a process still in it).</exception>
    public void Dispose()
    {
        OomEvents?.Dispose();
        cgroupfs.Remove(Path);
    }
}
