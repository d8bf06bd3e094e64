using System.Globalization;
using System.Text;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// <c>live/</c> in the sandbox's state folder: a tmpfs with what exists only while containers run, the
/// run folders (bundles, pid files, the mountpoints of each run's /work) and the OCI runtime's own state
/// (its <c>--root</c>). None of it may outlive a reboot, and on a disk every container cost about ten inode
/// allocations and removals in the journal (a tenth of all CPU at 1,000 concurrent containers on this
/// host, whose /run is not a tmpfs either). A crashed process leaves the tmpfs mounted with its
/// containers' state in it, which is what the next start's leftover cleaning reads.
/// </summary>
internal sealed class LiveFolder
{
    private const string Options = "size=1g,mode=0700";

    private LiveFolder(string path)
    {
        Path = path;
        RunsDirectory = System.IO.Path.Combine(path, "runs");
        RuntimeRoot = System.IO.Path.Combine(path, "runtime");
    }

    public string Path { get; }

    /// <summary>One folder per run (see <see cref="RunDirectory"/>).</summary>
    public string RunsDirectory { get; }

    /// <summary>The OCI runtime's state folder, passed as <c>--root</c> to every call.</summary>
    public string RuntimeRoot { get; }

    /// <summary>The live folder of <paramref name="stateDirectory"/>, without mounting anything.</summary>
    public static LiveFolder Of(string stateDirectory) => new(System.IO.Path.Combine(stateDirectory, "live"));

    /// <summary>Mounts the tmpfs unless a previous process left it mounted, and creates its two folders.</summary>
    /// <exception cref="IOException">The mount failed.</exception>
    public void Mount()
    {
        Directory.CreateDirectory(Path);
        if (!IsMountPoint(Path))
        {
            Libc.MountTmpfs(Path, Libc.MsNosuid | Libc.MsNodev, Options);
        }
        Directory.CreateDirectory(RunsDirectory);
        Directory.CreateDirectory(RuntimeRoot);
    }

    /// <summary>Unmounts the tmpfs when no run and no container state is left in it (after a clean stop).</summary>
    public void UnmountIfIdle()
    {
        var idle = (!Directory.Exists(RunsDirectory) || !Directory.EnumerateFileSystemEntries(RunsDirectory).Any())
            && (!Directory.Exists(RuntimeRoot) || !Directory.EnumerateDirectories(RuntimeRoot).Any());
        if (idle && IsMountPoint(Path))
        {
            Libc.Unmount(Path);
        }
    }

    private static bool IsMountPoint(string path)
    {
        var full = System.IO.Path.GetFullPath(path).TrimEnd('/');
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // Field 5 is the mount point, with space, tab, newline and backslash written as \ooo octal.
            var fields = line.Split(' ');
            if (fields.Length > 4 && Unescape(fields[4]) == full)
            {
                return true;
            }
        }
        return false;
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }
        var bytes = new List<byte>();
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length
                && int.TryParse(field.AsSpan(i + 1, 3), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                bytes.Add(Convert.ToByte(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }
}
