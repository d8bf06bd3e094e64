using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Runbox.Sandbox.Native;

/// <summary>
/// A folder held by a file descriptor, through which every path below it is resolved by the kernel
/// beneath it (<c>openat2</c> with <c>RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
/// RESOLVE_NO_XDEV</c>): no symlink is followed anywhere on the path, no magic link of /proc, no other
/// mount is entered, and nothing resolves above the folder. Files are opened <c>O_NOFOLLOW | O_NONBLOCK |
/// O_NOCTTY</c> and checked to be regular files on the folder's own device before a byte is read, and
/// reads take a byte budget.
/// </summary>
/// <remarks>
/// This is the one way the service, running as root, touches a tree a program could have changed (a run's
/// /work, and any folder a local user could write into): a path string such a tree contains is never
/// handed to the host's file API. Names are bytes, as the kernel keeps them.
/// </remarks>
internal sealed partial class ConfinedFolder : IDisposable
{
    public const int NameMax = 255;

    private const int Eintr = 4;
    private const int Enoent = 2;
    private const int Eexist = 17;
    private const int Enotdir = 20;
    private const int Eloop = 40;
    private const int Exdev = 18;

    private const int ORdonly = 0;
    private const int OWronly = 1;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int ONoctty = 0x100;
    private const int ONonblock = 0x800;
    private const int ODirectory = 0x10000;
    private const int ONofollow = 0x20000;
    private const int OCloexec = 0x80000;

    private const ulong ResolveNoXdev = 0x01;
    private const ulong ResolveNoMagiclinks = 0x02;
    private const ulong ResolveNoSymlinks = 0x04;
    private const ulong ResolveBeneath = 0x08;
    private const ulong Confined = ResolveBeneath | ResolveNoSymlinks | ResolveNoMagiclinks | ResolveNoXdev;

    private const int AtSymlinkNofollow = 0x100;
    private const int AtRemovedir = 0x200;
    private const int AtEmptyPath = 0x1000;

    // openat2 has the same number on every architecture (it came after the tables were unified).
    private const long SysOpenat2 = 437;

    private const uint StatxType = 0x1;
    private const uint StatxSize = 0x200;
    private const int StatxBufferSize = 256;

    private readonly SafeFileHandle _fd;

    private ConfinedFolder(SafeFileHandle fd, ulong device)
    {
        _fd = fd;
        Device = device;
    }

    /// <summary>The device the folder is on; a confined open never leaves it.</summary>
    public ulong Device { get; }

    /// <summary>
    /// Opens a folder the service made itself at <paramref name="trustedPath"/> (not one a program can
    /// change: its final component is still not followed if it is a link).
    /// </summary>
    /// <exception cref="IOException">It is missing, not a folder, or cannot be opened.</exception>
    public static ConfinedFolder Open(string trustedPath)
    {
        var fd = Retry(() => open(trustedPath, ORdonly | ODirectory | ONofollow | OCloexec, 0));
        if (fd < 0)
        {
            throw Error("open", trustedPath, Marshal.GetLastPInvokeError());
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        return new ConfinedFolder(handle, Stat(handle).Device);
    }

    /// <summary>Takes an existing folder handle (an O_PATH one will do) without owning it.</summary>
    public static ConfinedFolder Borrow(SafeFileHandle folder) => new(new SafeFileHandle(folder.DangerousGetHandle(), ownsHandle: false), Stat(folder).Device);

    /// <summary>
    /// Opens the folder at <paramref name="relativePath"/> beneath this one; null with the reason when it
    /// is missing, a link, on another device or not a folder.
    /// </summary>
    public ConfinedFolder? OpenFolder(string relativePath, out string? refusal) => OpenFolder(Encoding.UTF8.GetBytes(relativePath), out refusal);

    /// <inheritdoc cref="OpenFolder(string, out string?)"/>
    public ConfinedFolder? OpenFolder(ReadOnlySpan<byte> relativePath, out string? refusal)
    {
        var fd = OpenBeneath(relativePath, ORdonly | ODirectory | ONofollow | ONonblock | OCloexec, 0, out var errno);
        if (fd is null)
        {
            refusal = Describe(errno);
            return null;
        }
        var stat = Stat(fd);
        if (stat.Device != Device)
        {
            fd.Dispose();
            refusal = "on another file system";
            return null;
        }
        refusal = null;
        return new ConfinedFolder(fd, stat.Device);
    }

    /// <summary>The entries of this folder (not . and ..), names as the bytes the kernel keeps.</summary>
    public List<Entry> List()
    {
        // getdents64 continues from the descriptor's offset: start from the top each time.
        _ = lseek(_fd, 0, 0);
        var entries = new List<Entry>();
        var buffer = new byte[32 * 1024];
        while (true)
        {
            nint read;
            do
            {
                read = getdents64(_fd, buffer, buffer.Length);
            }
            while (read < 0 && Marshal.GetLastPInvokeError() == Eintr);
            if (read < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                // A folder removed while it is open lists as empty (another remover got there first).
                return errno == Enoent ? entries : throw Error("getdents64 on", "a confined folder", errno);
            }
            if (read == 0)
            {
                return entries;
            }
            // struct linux_dirent64: u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[] (NUL-terminated).
            for (var offset = 0; offset < read;)
            {
                var length = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(offset + 16));
                var type = (EntryType)buffer[offset + 18];
                var name = buffer.AsSpan(offset + 19, length - 19);
                name = name[..name.IndexOf((byte)0)];
                if (!(name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)))
                {
                    entries.Add(new Entry(name.ToArray(), type));
                }
                offset += length;
            }
        }
    }

    /// <summary>What one entry is, without following it if it is a link (lstat beneath this folder).</summary>
    public (EntryType Type, long Size, ulong Device)? Inspect(ReadOnlySpan<byte> name)
    {
        var path = NulTerminated(name);
        var buffer = new byte[StatxBufferSize];
        var rc = Retry(() => statx(_fd, path, AtSymlinkNofollow, StatxType | StatxSize, buffer));
        if (rc != 0)
        {
            return null;
        }
        var stat = StatFrom(buffer);
        return (stat.Type, stat.Size, stat.Device);
    }

    /// <summary>
    /// Reads the regular file at <paramref name="relativePath"/> if it has at most <paramref name="maxBytes"/>
    /// bytes; null with the reason otherwise (missing, a link, a FIFO or device or socket, on another
    /// device, larger than the budget). Never blocks: the open is non-blocking and the type is checked first.
    /// </summary>
    public byte[]? ReadFile(string relativePath, long maxBytes, out string? refusal)
    {
        using var fd = OpenBeneath(relativePath, ORdonly | ONofollow | ONonblock | ONoctty | OCloexec, 0, out var errno);
        if (fd is null)
        {
            refusal = Describe(errno);
            return null;
        }
        var stat = Stat(fd);
        if (stat.Type != EntryType.File)
        {
            refusal = "not a regular file";
            return null;
        }
        if (stat.Device != Device)
        {
            refusal = "on another file system";
            return null;
        }
        if (stat.Size > maxBytes)
        {
            refusal = $"{stat.Size} bytes, over the remaining budget of {maxBytes}";
            return null;
        }
        // The size is only a hint (nothing should be writing, but nothing is trusted): read one byte past the budget to tell.
        var content = new byte[(int)Math.Min(stat.Size, maxBytes) + 1];
        var length = 0;
        while (length < content.Length)
        {
            var read = ReadInto(fd, content.AsSpan(length));
            if (read == 0)
            {
                break;
            }
            length += read;
        }
        if (length > maxBytes)
        {
            refusal = $"over the remaining budget of {maxBytes} bytes";
            return null;
        }
        refusal = null;
        return content.AsSpan(0, length).ToArray();
    }

    /// <summary>
    /// Creates the folders of <paramref name="relativePath"/> that do not exist yet (owned by
    /// <paramref name="uid"/>, mode 0755) and a new file there with <paramref name="content"/> (mode 0644).
    /// </summary>
    /// <exception cref="IOException">A part of the path exists as something else, or the file exists.</exception>
    public void CreateFile(string relativePath, ReadOnlySpan<byte> content, int uid)
    {
        var slash = relativePath.LastIndexOf('/');
        if (slash > 0)
        {
            CreateFolders(relativePath[..slash], uid);
        }
        using var fd = OpenBeneath(relativePath, OWronly | OCreat | OExcl | ONofollow | ONoctty | OCloexec, Convert.ToInt32("644", 8), out var errno)
            ?? throw Error("create", relativePath, errno);
        while (!content.IsEmpty)
        {
            var written = WriteFrom(fd, content);
            content = content[written..];
        }
        ChangeOwner(fd, relativePath, uid);
    }

    /// <summary>Creates each missing folder of <paramref name="relativePath"/>, owned by <paramref name="uid"/>, mode 0755.</summary>
    /// <exception cref="IOException">A part exists and is not a folder of this file system.</exception>
    public void CreateFolders(string relativePath, int uid)
    {
        var current = this;
        try
        {
            foreach (var part in relativePath.Split('/'))
            {
                // mkdir never follows a final link (it fails with EEXIST), and the folder it is made in was opened confined.
                if (Retry(() => mkdirat(current._fd, part, Convert.ToInt32("755", 8))) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != Eexist)
                {
                    throw Error("mkdir", relativePath, errno);
                }
                var next = current.OpenFolder(Encoding.UTF8.GetBytes(part), out var refusal) ?? throw new IOException($"{relativePath}: {part} is {refusal}");
                if (current != this)
                {
                    current.Dispose();
                }
                current = next;
                ChangeOwner(current._fd, relativePath, uid);
            }
        }
        finally
        {
            if (current != this)
            {
                current.Dispose();
            }
        }
    }

    /// <summary>
    /// Removes everything in this folder, depth first, without following links and without entering other
    /// mounts (one found makes it throw, since what is mounted there is not ours to delete). What vanishes
    /// meanwhile (another remover at the same tree) is gone either way.
    /// </summary>
    /// <exception cref="IOException">A mount is in the way, or a removal failed.</exception>
    public void RemoveContents()
    {
        foreach (var entry in List())
        {
            var name = NulTerminated(entry.Name);
            if (Inspect(entry.Name) is not { } what)
            {
                continue;
            }
            if (what.Type == EntryType.Folder)
            {
                if (what.Device != Device)
                {
                    throw new IOException($"a mount is left at {Encoding.UTF8.GetString(entry.Name)}");
                }
                using (var child = OpenFolder(entry.Name, out _))
                {
                    child?.RemoveContents();
                }
                Remove(name, AtRemovedir, entry.Name);
            }
            else
            {
                Remove(name, 0, entry.Name);
            }
        }
    }

    /// <summary>Removes a folder the service made (and everything in it, see <see cref="RemoveContents"/>); a missing one is already gone.</summary>
    /// <exception cref="IOException">A mount is in the way, or a removal failed.</exception>
    public static void RemoveTree(string trustedPath)
    {
        var full = Path.GetFullPath(trustedPath).TrimEnd('/');
        var parentPath = Path.GetDirectoryName(full) ?? throw new IOException("the root folder is not removed");
        ConfinedFolder parent;
        try
        {
            parent = Open(parentPath);
        }
        catch (FileNotFoundException)
        {
            return;
        }
        using (parent)
        {
            var name = Path.GetFileName(full);
            using (var folder = parent.OpenFolder(name, out var refusal))
            {
                if (folder is null)
                {
                    if (refusal == Describe(Enoent))
                    {
                        return;
                    }
                    // A link or a file in the service's own place: removed as itself, never followed.
                    parent.Remove(NulTerminated(Encoding.UTF8.GetBytes(name)), 0, Encoding.UTF8.GetBytes(name));
                    return;
                }
                folder.RemoveContents();
            }
            parent.Remove(NulTerminated(Encoding.UTF8.GetBytes(name)), AtRemovedir, Encoding.UTF8.GetBytes(name));
        }
    }

    public void Dispose() => _fd.Dispose();

    private void Remove(byte[] nulTerminatedName, int flags, byte[] name)
    {
        if (Retry(() => unlinkat(_fd, nulTerminatedName, flags)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Enoent)
            {
                return;
            }
            throw Error("remove", Encoding.UTF8.GetString(name), errno);
        }
    }

    private SafeFileHandle? OpenBeneath(string relativePath, int flags, int mode, out int errno) =>
        OpenBeneath(Encoding.UTF8.GetBytes(relativePath), flags, mode, out errno);

    private SafeFileHandle? OpenBeneath(ReadOnlySpan<byte> relativePath, int flags, int mode, out int errno)
    {
        var how = new OpenHow { Flags = (ulong)flags, Mode = (ulong)mode, Resolve = Confined };
        var path = NulTerminated(relativePath);
        long fd;
        do
        {
            fd = openat2(SysOpenat2, _fd, path, ref how, (nuint)Marshal.SizeOf<OpenHow>());
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == Eintr);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        errno = 0;
        return new SafeFileHandle((nint)fd, ownsHandle: true);
    }

    private static string Describe(int errno) => errno switch
    {
        Enoent => "missing",
        Eloop => "a symbolic link",
        Exdev => "on another file system",
        Enotdir => "not a folder",
        _ => Marshal.GetPInvokeErrorMessage(errno),
    };

    private static (EntryType Type, long Size, ulong Device) Stat(SafeFileHandle fd)
    {
        var buffer = new byte[StatxBufferSize];
        if (Retry(() => statx(fd, [0], AtEmptyPath | AtSymlinkNofollow, StatxType | StatxSize, buffer)) != 0)
        {
            throw Error("statx", "a confined file", Marshal.GetLastPInvokeError());
        }
        return StatFrom(buffer);
    }

    private static (EntryType Type, long Size, ulong Device) StatFrom(byte[] buffer)
    {
        // struct statx: stx_mode (u16) at 28, stx_size (u64) at 40, stx_dev_major/minor (u32) at 136/140.
        var mode = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(28));
        var size = (long)BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(40));
        var device = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(136)) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(140));
        var type = (mode & 0xF000) switch
        {
            0x8000 => EntryType.File,
            0x4000 => EntryType.Folder,
            0xA000 => EntryType.Link,
            _ => EntryType.Other,
        };
        return (type, size, device);
    }

    private static void ChangeOwner(SafeFileHandle fd, string what, int uid)
    {
        if (fchown(fd, uid, uid) != 0)
        {
            throw Error("chown", what, Marshal.GetLastPInvokeError());
        }
    }

    private static unsafe int ReadInto(SafeFileHandle fd, Span<byte> buffer)
    {
        nint read;
        fixed (byte* start = buffer)
        {
            do
            {
                read = read_into(fd, start, buffer.Length);
            }
            while (read < 0 && Marshal.GetLastPInvokeError() == Eintr);
        }
        return read >= 0 ? (int)read : throw Error("read of", "a confined file", Marshal.GetLastPInvokeError());
    }

    private static unsafe int WriteFrom(SafeFileHandle fd, ReadOnlySpan<byte> buffer)
    {
        nint written;
        fixed (byte* start = buffer)
        {
            do
            {
                written = write_from(fd, start, buffer.Length);
            }
            while (written < 0 && Marshal.GetLastPInvokeError() == Eintr);
        }
        return written > 0 ? (int)written : throw Error("write to", "a confined file", Marshal.GetLastPInvokeError());
    }

    private static byte[] NulTerminated(ReadOnlySpan<byte> name)
    {
        var bytes = new byte[name.Length + 1];
        name.CopyTo(bytes);
        return bytes;
    }

    private static int Retry(Func<int> call)
    {
        int rc;
        do
        {
            rc = call();
        }
        while (rc < 0 && Marshal.GetLastPInvokeError() == Eintr);
        return rc;
    }

    private static IOException Error(string call, string what, int errno)
    {
        var message = $"{call} {what} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        return errno is Enoent or Enotdir ? new FileNotFoundException(message) : new IOException(message);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>d_type of getdents64, and the type a stat reports.</summary>
    public enum EntryType : byte
    {
        Unknown = 0,
        Fifo = 1,
        CharDevice = 2,
        Folder = 4,
        BlockDevice = 6,
        File = 8,
        Link = 10,
        Socket = 12,
        Other = 255,
    }

    /// <summary>A folder entry: its name as bytes, and its type as the folder listing gives it (a hint; <see cref="Inspect"/> tells).</summary>
    public sealed record Entry(byte[] Name, EntryType Type);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long openat2(long number, SafeFileHandle dirfd, byte[] path, ref OpenHow how, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint getdents64(SafeFileHandle fd, [Out] byte[] buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int statx(SafeFileHandle dirfd, byte[] path, int flags, uint mask, [Out] byte[] buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unlinkat(SafeFileHandle dirfd, byte[] path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdirat(SafeFileHandle dirfd, string path, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchown(SafeFileHandle fd, int owner, int group);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint read_into(SafeFileHandle fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint write_from(SafeFileHandle fd, byte* buffer, nint count);
}
