using System.Runtime.InteropServices;

namespace Runbox.Sandbox.Native;

/// <summary>The few libc calls .NET has no API for.</summary>
internal static partial class Libc
{
    private const int PrSetChildSubreaper = 36;
    private const int Eintr = 4;
    private const int Echild = 10;
    private const int Einval = 22;
    private const int Enoent = 2;
    private const int MntDetach = 2;

    public const ulong MsNosuid = 2;
    public const ulong MsNodev = 4;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string fstype, ulong flags, string data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, int owner, int group);

    /// <summary>
    /// Makes this process adopt orphaned descendants. A container's init is a child of `runtime create`,
    /// which exits at once; as subreaper we inherit the init and can waitpid it for the true exit status.
    /// </summary>
    public static void BecomeChildSubreaper()
    {
        if (prctl(PrSetChildSubreaper, 1, 0, 0, 0) != 0)
        {
            throw new InvalidOperationException($"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Blocks until <paramref name="pid"/> (our child) exits and reaps it.</summary>
    /// <returns>The raw wait status, or null when the pid is not our child (already reaped by someone else).</returns>
    public static int? WaitForExit(int pid)
    {
        while (true)
        {
            if (waitpid(pid, out var status, 0) == pid)
            {
                return status;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Eintr)
            {
                continue;
            }
            if (errno == Echild)
            {
                return null;
            }
            throw new InvalidOperationException($"waitpid({pid}) failed: errno {errno}");
        }
    }

    public static void MountTmpfs(string target, ulong flags, string data)
    {
        if (mount("tmpfs", target, "tmpfs", flags, data) != 0)
        {
            throw new IOException($"mount tmpfs on {target} failed: errno {Marshal.GetLastPInvokeError()}");
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

    public static bool Exited(int status) => (status & 0x7f) == 0;

    public static int ExitCode(int status) => (status >> 8) & 0xff;

    public static int TermSignal(int status) => status & 0x7f;
}
