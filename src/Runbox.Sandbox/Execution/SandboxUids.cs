using System.Globalization;
using System.Runtime.InteropServices;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// A host uid (and the gid of the same number) of its own for every run, so that no per-uid kernel
/// limit or count is shared between two runs that are alive at once: inotify instances and watches,
/// RLIMIT_NPROC, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, unix sockets' in-flight descriptors, pipe pages.
/// </summary>
/// <remarks>
/// <para>
/// The uids come from a range no host account uses (checked against the host's passwd and group files at
/// start), by default 0x70000000 up to 0x7fffffff: above the ranges systemd gives users, dynamic users and
/// containers, below 2^31, where some tools misread uids. No user namespace is used: counts made in one
/// are charged to its creator (root) as well, so every run would share root's instead.
/// </para>
/// <para>
/// Each sandbox instance holds a block of <see cref="BlockSize"/> of them, claimed with an exclusive lock
/// on a file in <c>/run/runbox/sandbox-uids/</c> that the kernel lets go when the process ends, so two
/// services on one host (or a service and the tests) never hand out the same uid. A uid is given to one run
/// at a time and back when its last container is gone; the lowest free one goes first, so a few uids do
/// most of the work. Processes found running as a uid of a block when it is claimed were left by an
/// instance that died: they are killed.
/// </para>
/// </remarks>
internal sealed partial class SandboxUids : IDisposable
{
    /// <summary>Uids per instance: more than the most runs one instance can have at once (4,096 slots and the probes).</summary>
    public const int BlockSize = 8192;

    public const string DefaultLockDirectory = "/run/runbox/sandbox-uids";

    private readonly FileStream _lock;
    private readonly Lock _gate = new();
    private readonly SortedSet<int> _free;

    private SandboxUids(FileStream blockLock, int first)
    {
        _lock = blockLock;
        First = first;
        _free = [.. Enumerable.Range(first, BlockSize)];
    }

    /// <summary>The first uid of this instance's block.</summary>
    public int First { get; }

    /// <summary>
    /// Claims the first free block of the range [<paramref name="rangeStart"/>, <paramref name="rangeStart"/> +
    /// <paramref name="rangeLength"/>), after checking that no account of the host has an id in the range.
    /// </summary>
    /// <exception cref="SandboxException">The host knows an id of the range, or every block is taken.</exception>
    public static SandboxUids Claim(long rangeStart, long rangeLength, string lockDirectory = DefaultLockDirectory, IReadOnlyList<string>? accountFiles = null)
    {
        foreach (var file in accountFiles ?? ["/etc/passwd", "/etc/group"])
        {
            if (KnownIds(file).FirstOrDefault(id => id.Id >= rangeStart && id.Id < rangeStart + rangeLength) is { Name: not null } known)
            {
                throw new SandboxException(
                    $"{file} has '{known.Name}' with id {known.Id}, inside the sandbox's uid range {rangeStart}-{rangeStart + rangeLength - 1}: "
                    + "runs would share that account's per-user limits and files; set Runbox:Sandbox:UidRangeStart to a range no account uses");
            }
        }
        Directory.CreateDirectory(lockDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        for (var block = 0L; (block + 1) * BlockSize <= rangeLength; block++)
        {
            var first = rangeStart + (block * BlockSize);
            FileStream blockLock;
            try
            {
                // FileShare.None takes an exclusive flock, released by the kernel when this process ends.
                blockLock = new FileStream(Path.Combine(lockDirectory, first.ToString(CultureInfo.InvariantCulture)), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                continue;
            }
            var uids = new SandboxUids(blockLock, (int)first);
            uids.KillLeftovers();
            return uids;
        }
        throw new SandboxException($"every block of {BlockSize} uids in the sandbox's uid range {rangeStart}-{rangeStart + rangeLength - 1} is held by another sandbox");
    }

    /// <summary>A uid no other run of this host has now.</summary>
    /// <exception cref="SandboxException">More runs than <see cref="BlockSize"/> at once.</exception>
    public int Rent()
    {
        lock (_gate)
        {
            if (_free.Count == 0)
            {
                throw new SandboxException($"all {BlockSize} sandbox uids of this instance are in use");
            }
            var uid = _free.Min;
            _free.Remove(uid);
            return uid;
        }
    }

    /// <summary>
    /// Gives a uid back once no process of its run is left. After a run that failed on the way (the sandbox
    /// threw), <paramref name="killStragglers"/> first kills any process still running as the uid, so the
    /// next run to get it shares nothing.
    /// </summary>
    public void Return(int uid, bool killStragglers = false)
    {
        if (killStragglers)
        {
            Kill(ProcessesOf(uid, uid + 1), uid, uid + 1);
        }
        lock (_gate)
        {
            if (uid < First || uid >= First + BlockSize || !_free.Add(uid))
            {
                throw new InvalidOperationException($"uid {uid} is not rented from this block");
            }
        }
    }

    /// <summary>The uids of the block, for the sandbox's /etc/passwd.</summary>
    public IEnumerable<int> All => Enumerable.Range(First, BlockSize);

    public void Dispose() => _lock.Dispose();

    private void KillLeftovers() => Kill(ProcessesOf(First, First + BlockSize), First, First + BlockSize);

    private static void Kill(IEnumerable<int> pids, long first, long end)
    {
        foreach (var pid in pids.ToList())
        {
            // A pidfd pins the process: the uid is read again through it, so a pid reused meanwhile is never hit.
            var pidfd = pidfd_open(pid, 0);
            if (pidfd < 0)
            {
                continue;
            }
            try
            {
                if (UidOf(pid) is { } uid && uid >= first && uid < end)
                {
                    _ = pidfd_send_signal(pidfd, Libc.Sigkill, 0, 0);
                }
            }
            finally
            {
                _ = close(pidfd);
            }
        }
    }

    private static IEnumerable<int> ProcessesOf(int first, int end)
    {
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(folder), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && UidOf(pid) is { } uid && uid >= first && uid < end)
            {
                yield return pid;
            }
        }
    }

    /// <summary>The real uid of a process; null once it is gone.</summary>
    private static long? UidOf(int pid)
    {
        string? status;
        try
        {
            status = Libc.ReadFile($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status");
        }
        catch (IOException)
        {
            return null;
        }
        var line = status?.Split('\n').FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        var fields = line?.Split('\t', StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: > 1 } && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var uid) ? uid : null;
    }

    private static IEnumerable<(string? Name, long Id)> KnownIds(string file)
    {
        if (!File.Exists(file))
        {
            yield break;
        }
        foreach (var line in File.ReadLines(file))
        {
            // name:password:id:... in both files.
            var fields = line.Split(':');
            if (fields.Length > 2 && long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                yield return (fields[0], id);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial int pidfd_open(long number, int pid, uint flags);

    private static int pidfd_open(int pid, uint flags) => pidfd_open(SysPidfdOpen, pid, flags);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial int pidfd_send_signal(long number, int pidfd, int signal, nint info, uint flags);

    private static int pidfd_send_signal(int pidfd, int signal, nint info, uint flags) => pidfd_send_signal(SysPidfdSendSignal, pidfd, signal, info, flags);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    // Both came after the syscall tables were unified: the same number on every architecture.
    private const long SysPidfdOpen = 434;
    private const long SysPidfdSendSignal = 424;
}
