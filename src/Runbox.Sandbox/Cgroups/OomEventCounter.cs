using Microsoft.Win32.SafeHandles;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Cgroups;

/// <summary>
/// cgroup v1's OOM notification: an eventfd registered on a memory cgroup's <c>memory.oom_control</c>
/// through <c>cgroup.event_control</c>. The kernel signals it whenever that cgroup (or one beneath it)
/// runs out of memory, and the count stays readable after the container's own cgroup, the only one whose
/// <c>oom_kill</c> counter would show the kill, is gone.
/// </summary>
internal sealed class OomEventCounter : IDisposable
{
    private readonly SafeFileHandle _eventFd;
    private long _count;

    private OomEventCounter(SafeFileHandle eventFd)
    {
        _eventFd = eventFd;
    }

    /// <exception cref="IOException">The cgroup refused the registration.</exception>
    public static OomEventCounter Register(string memoryCgroupDirectory)
    {
        var eventFd = Libc.CreateEventFd();
        try
        {
            // The control file only names what to watch: the kernel keeps no reference to it once the
            // registration is written, so it is closed at once (every open fd here is one more for each
            // process this service starts to close on exec).
            using var oomControl = Libc.OpenReadOnly(Path.Combine(memoryCgroupDirectory, "memory.oom_control"));
            Libc.WriteFile(
                Path.Combine(memoryCgroupDirectory, "cgroup.event_control"),
                $"{eventFd.DangerousGetHandle()} {oomControl.DangerousGetHandle()}");
            return new OomEventCounter(eventFd);
        }
        catch
        {
            eventFd.Dispose();
            throw;
        }
    }

    /// <summary>OOM events so far (reading drains the eventfd, so the total is kept here).</summary>
    public long Read()
    {
        _count += Libc.ReadEventFd(_eventFd);
        return _count;
    }

    public void Dispose() => _eventFd.Dispose();
}
