using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Runbox.Sandbox.Native;

/// <summary>The few libc calls .NET has no API for.</summary>
internal static partial class Libc
{
    private const int Eintr = 4;
    private const int Eagain = 11;
    private const int Einval = 22;
    private const int Enoent = 2;
    private const int Enotdir = 20;
    private const int MntDetach = 2;

    public const ulong MsRdonly = 1;
    public const ulong MsNosuid = 2;
    public const ulong MsNodev = 4;
    private const ulong MsRemount = 32;
    private const ulong MsBind = 4096;

    private const int ORdonly = 0;
    private const int OWronly = 1;
    private const int OCreat = 0x40;
    private const int OTrunc = 0x200;
    private const int OPath = 0x200000;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;

    private const int EfdNonblock = 0x800;
    private const int EfdCloexec = 0x80000;

    public const int Sigkill = 9;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    private static partial int gettid();

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(SafeFileHandle fd, out ulong value, nint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint read_bytes(SafeFileHandle fd, [Out] byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint write_value(SafeFileHandle fd, in ulong value, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll([In, Out] PollFd[] fds, nuint count, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int inotify_init1(int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int inotify_add_watch(SafeFileHandle fd, string path, uint mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int inotify_rm_watch(SafeFileHandle fd, int descriptor);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string? source, string target, string? fstype, ulong flags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open_file(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint read_into(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint write_from(int fd, byte* buffer, nint count);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, int owner, int group);

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; a process already gone is not an error.</summary>
    public static void Kill(int pid, int signal) => _ = kill(pid, signal);

    /// <summary>The calling thread's kernel id (what cgroup v1's <c>tasks</c> files take).</summary>
    public static int GetThreadId() => gettid();

    public static uint GetEffectiveUserId() => geteuid();

    /// <summary>A non-blocking eventfd (counter starting at 0), closed on exec.</summary>
    public static SafeFileHandle CreateEventFd()
    {
        var fd = eventfd(0, EfdNonblock | EfdCloexec);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw new IOException($"eventfd failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Takes the eventfd's counter (resetting it to 0); 0 when nothing was signalled.</summary>
    public static long ReadEventFd(SafeFileHandle eventFd)
    {
        while (true)
        {
            if (read(eventFd, out var value, sizeof(ulong)) == sizeof(ulong))
            {
                return (long)value;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Eagain)
            {
                return 0;
            }
            if (errno != Eintr)
            {
                throw new IOException($"read of an eventfd failed: errno {errno}");
            }
        }
    }

    /// <summary>
    /// An O_PATH handle on a folder (closed on exec). Paths through <c>/proc/self/fd/N/</c> reach the folder's
    /// contents for as long as it is open, even after the folder's mount has been detached from every path.
    /// </summary>
    public static SafeFileHandle OpenFolderPath(string path)
    {
        var fd = Open(path, OPath | ODirectory | OCloexec);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw FileError("open", path, Marshal.GetLastPInvokeError());
    }

    /// <summary>
    /// Writes <paramref name="text"/> (ASCII) to <paramref name="path"/> as a shell's <c>echo text &gt; path</c>
    /// does: open (creating or truncating), one write, close. It is for cgroupfs control files, which take one
    /// value per write and of which a run writes a score: .NET's file API adds an fstat, an flock, an
    /// fstatfs, an lseek and an ftruncate to every open, none of which such a file needs.
    /// </summary>
    /// <exception cref="IOException">The open or the write failed (<see cref="FileNotFoundException"/> when the path does not exist).</exception>
    public static unsafe void WriteFile(string path, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var fd = Open(path, OWronly | OCreat | OTrunc | OCloexec);
        if (fd < 0)
        {
            throw FileError("open", path, Marshal.GetLastPInvokeError());
        }
        try
        {
            fixed (byte* start = bytes)
            {
                nint written;
                do
                {
                    written = write_from(fd, start, bytes.Length);
                }
                while (written < 0 && Marshal.GetLastPInvokeError() == Eintr);
                if (written < 0)
                {
                    throw FileError("write to", path, Marshal.GetLastPInvokeError());
                }
                if (written != bytes.Length)
                {
                    throw new IOException($"write to {path} took {written} of {bytes.Length} bytes");
                }
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>
    /// The whole of a small file (ASCII), read with one open and reads until the end; null when the file or a
    /// folder on its path does not exist. For cgroupfs and /proc files, with the same reasoning as <see cref="WriteFile"/>.
    /// </summary>
    /// <exception cref="IOException">The open or a read failed for another reason.</exception>
    public static unsafe string? ReadFile(string path)
    {
        var fd = Open(path, ORdonly | OCloexec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is Enoent or Enotdir ? null : throw FileError("open", path, errno);
        }
        try
        {
            var buffer = new byte[4096];
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }
                nint read;
                fixed (byte* start = buffer)
                {
                    do
                    {
                        read = read_into(fd, start + length, buffer.Length - length);
                    }
                    while (read < 0 && Marshal.GetLastPInvokeError() == Eintr);
                }
                if (read < 0)
                {
                    throw FileError("read of", path, Marshal.GetLastPInvokeError());
                }
                if (read == 0)
                {
                    return Encoding.ASCII.GetString(buffer, 0, length);
                }
                length += (int)read;
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>A read-only handle on <paramref name="path"/> (closed on exec), opened without .NET's extra calls (see <see cref="WriteFile"/>).</summary>
    /// <exception cref="IOException">The open failed.</exception>
    public static SafeFileHandle OpenReadOnly(string path)
    {
        var fd = Open(path, ORdonly | OCloexec);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw FileError("open", path, Marshal.GetLastPInvokeError());
    }

    public static void MountTmpfs(string target, ulong flags, string data)
    {
        if (mount("tmpfs", target, "tmpfs", flags, data) != 0)
        {
            throw new IOException($"mount tmpfs on {target} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Binds <paramref name="source"/> (a file or folder) read-only at <paramref name="target"/>, which must exist.</summary>
    public static void BindReadOnly(string source, string target)
    {
        if (mount(source, target, null, MsBind, null) != 0)
        {
            throw new IOException($"bind mount of {source} on {target} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        // A bind takes its flags only on a second, remounting call.
        if (mount(null, target, null, MsBind | MsRemount | MsRdonly | MsNosuid | MsNodev, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Unmount(target);
            throw new IOException($"read-only remount of {target} failed: errno {errno}");
        }
    }

    /// <summary>Lazily unmounts <paramref name="target"/>; false when nothing was mounted there.</summary>
    public static bool Unmount(string target)
    {
        if (umount2(target, MntDetach) == 0)
        {
            return true;
        }
        var errno = Marshal.GetLastPInvokeError();
        if (errno is Einval or Enoent)
        {
            return false;
        }
        throw new IOException($"umount {target} failed: errno {errno}");
    }

    public static void ChangeOwner(string path, int uid, int gid)
    {
        if (lchown(path, uid, gid) != 0)
        {
            throw new IOException($"chown {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>open(2), repeated when a signal interrupts it; a file it creates gets mode 0644.</summary>
    private static int Open(string path, int flags)
    {
        int fd;
        do
        {
            fd = open_file(path, flags, 420);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == Eintr);
        return fd;
    }

    private static IOException FileError(string call, string path, int errno)
    {
        var message = $"{call} {path} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        return errno is Enoent or Enotdir ? new FileNotFoundException(message, path) : new IOException(message);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Returned;
    }

    /// <summary>An inotify instance (closed on exec) whose blocking <see cref="Read"/> another thread can end.</summary>
    public sealed class Inotify : IDisposable
    {
        /// <summary>The kernel dropped events (IN_Q_OVERFLOW).</summary>
        public const uint QueueOverflow = 0x4000;

        private const int InNonblock = 0x800;
        private const int InCloexec = 0x80000;
        private const uint InCloseWrite = 0x8;
        private const uint InMovedTo = 0x80;
        private const uint InOnlyDir = 0x01000000;
        private const short PollIn = 1;

        private readonly SafeFileHandle _fd;
        private readonly SafeFileHandle _stop;

        private Inotify(SafeFileHandle fd, SafeFileHandle stop)
        {
            _fd = fd;
            _stop = stop;
        }

        /// <exception cref="IOException">The kernel refused an inotify instance (per-user limit).</exception>
        public static Inotify Create()
        {
            var fd = inotify_init1(InNonblock | InCloexec);
            if (fd < 0)
            {
                throw new IOException($"inotify_init1 failed: errno {Marshal.GetLastPInvokeError()}");
            }
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            try
            {
                return new Inotify(handle, CreateEventFd());
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>Watches a folder for files written and closed, or moved into it; returns the watch descriptor.</summary>
        public int AddWatch(string folder)
        {
            var descriptor = inotify_add_watch(_fd, folder, InCloseWrite | InMovedTo | InOnlyDir);
            return descriptor >= 0 ? descriptor : throw new IOException($"inotify_add_watch on {folder} failed: errno {Marshal.GetLastPInvokeError()}");
        }

        /// <summary>Ends a watch; one whose folder is already gone ended by itself.</summary>
        public void RemoveWatch(int descriptor) => _ = inotify_rm_watch(_fd, descriptor);

        /// <summary>Waits for events and reads as many as fit; 0 once <see cref="Stop"/> was called.</summary>
        public int Read(byte[] buffer)
        {
            var fds = new[] { new PollFd { Fd = (int)_fd.DangerousGetHandle(), Events = PollIn }, new PollFd { Fd = (int)_stop.DangerousGetHandle(), Events = PollIn } };
            while (true)
            {
                if (poll(fds, 2, -1) < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == Eintr)
                    {
                        continue;
                    }
                    throw new IOException($"poll on inotify failed: errno {errno}");
                }
                if ((fds[1].Returned & PollIn) != 0)
                {
                    return 0;
                }
                var length = read_bytes(_fd, buffer, buffer.Length);
                if (length > 0)
                {
                    return (int)length;
                }
                var readErrno = Marshal.GetLastPInvokeError();
                if (length < 0 && readErrno is not (Eagain or Eintr))
                {
                    throw new IOException($"read of inotify failed: errno {readErrno}");
                }
            }
        }

        /// <summary>Makes <see cref="Read"/> return 0, now and from then on.</summary>
        public void Stop() => _ = write_value(_stop, 1UL, sizeof(ulong));

        public void Dispose()
        {
            _fd.Dispose();
            _stop.Dispose();
        }
    }
}
