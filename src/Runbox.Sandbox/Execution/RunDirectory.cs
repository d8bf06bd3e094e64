using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Runbox.Core.Execution;
using Runbox.Core.Tasks;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// The host side of one run: <c>runs/&lt;id&gt;/</c> holding the bundles, and <c>work/</c>, a tmpfs of the
/// run's disk size mounted on the host and bound as /work into the compile and the run container.
/// A tmpfs enforces the size for everything written (a bind of the host disk would only be capped per
/// file by RLIMIT_FSIZE), costs one mount call, and vanishes with its last user.
/// </summary>
/// <remarks>
/// The mount stays on the host only until the last container is up (<see cref="DetachWork"/>): each new
/// container copies the host's mount table, so a mount per running task made every launch slower as more
/// ran (without them a 1,000-task burst took about a fifth less CPU; docs/benchmarks.md). Detached, the
/// tmpfs lives on in the container's own bind of it, and the service reaches it through a handle it
/// opened while it was mounted: that is how the artifacts are read after the run.
/// </remarks>
internal sealed class RunDirectory : IDisposable
{
    private const UnixFileMode ReadableFile = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const int MaxInodes = 16_384;

    private readonly int _uid;
    private readonly string _mountPoint;
    private SafeFileHandle? _work;
    private bool _detached;

    private RunDirectory(string path, int uid)
    {
        Path = path;
        _uid = uid;
        _mountPoint = System.IO.Path.Combine(path, "work");
    }

    public string Path { get; }

    /// <summary>Where /work is mounted on the host, to bind into a container; gone once detached.</summary>
    public string WorkPath => _detached
        ? throw new InvalidOperationException("/work was detached from the host: no container can bind it any more")
        : _mountPoint;

    /// <summary>/work/out, as the host reaches it (through the handle once detached).</summary>
    public string OutPath => System.IO.Path.Combine(_detached ? HandlePath : _mountPoint, "out");

    private string HandlePath => "/proc/self/fd/" + _work!.DangerousGetHandle().ToString(CultureInfo.InvariantCulture);

    public static RunDirectory Create(string runsDirectory, string runId, int uid, long diskBytes)
    {
        var run = new RunDirectory(System.IO.Path.Combine(runsDirectory, runId), uid);
        Directory.CreateDirectory(run.WorkPath);
        try
        {
            var size = diskBytes.ToString(CultureInfo.InvariantCulture);
            Libc.MountTmpfs(run._mountPoint, Libc.MsNosuid | Libc.MsNodev,
                $"size={size},nr_inodes={MaxInodes},mode=0755,uid={uid},gid={uid}");
            run._work = Libc.OpenFolderPath(run._mountPoint);
            Directory.CreateDirectory(run.OutPath);
            Libc.ChangeOwner(run.OutPath, uid, uid);
        }
        catch
        {
            run.Dispose();
            throw;
        }
        return run;
    }

    /// <summary>Writes the source and the extra files into /work, owned by the sandbox user.</summary>
    /// <exception cref="ArgumentException">A file name that is not a plain name (validation missed it).</exception>
    public void WriteFiles(string sourceFile, string source, IReadOnlyList<TaskFile> files)
    {
        WriteFile(sourceFile, Encoding.UTF8.GetBytes(source));
        foreach (var file in files)
        {
            WriteFile(file.Name, file.Decode());
        }
    }

    /// <summary>
    /// Files under /work/out, in name order, bounded in count and total size. Symlinks are never followed:
    /// they would resolve against the host filesystem, since the service reads as host root. FIFOs cannot
    /// exist (seccomp refuses mknod) and sockets fail to open, so every read here returns.
    /// </summary>
    public IReadOnlyList<Artifact> CollectArtifacts(int maxCount, long maxTotalBytes)
    {
        var files = new List<FileInfo>();
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(OutPath));
        while (pending.Count > 0)
        {
            foreach (var entry in pending.Pop().EnumerateFileSystemInfos())
            {
                if (entry.LinkTarget is not null)
                {
                    continue;
                }
                if (entry is DirectoryInfo dir)
                {
                    pending.Push(dir);
                }
                else
                {
                    files.Add((FileInfo)entry);
                }
            }
        }
        files.Sort((a, b) => StringComparer.Ordinal.Compare(a.FullName, b.FullName));

        var artifacts = new List<Artifact>();
        long total = 0;
        foreach (var file in files)
        {
            if (artifacts.Count == maxCount)
            {
                break;
            }
            if (total + file.Length > maxTotalBytes)
            {
                continue;
            }
            byte[] content;
            try
            {
                content = File.ReadAllBytes(file.FullName);
            }
            catch (IOException)
            {
                continue;
            }
            total += content.Length;
            artifacts.Add(new Artifact(System.IO.Path.GetRelativePath(OutPath, file.FullName), content));
        }
        return artifacts;
    }

    /// <summary>
    /// Takes /work off the host's mount table; call once the last container that needs it is up (it keeps
    /// its own bind). Files stay reachable through <see cref="OutPath"/> until dispose.
    /// </summary>
    public void DetachWork()
    {
        Libc.Unmount(_mountPoint);
        _detached = true;
    }

    /// <summary>Unmounts /work, lets go of it and deletes the folder; safe to call for a half-created run.</summary>
    public void Dispose()
    {
        _work?.Dispose();
        Remove(Path);
    }

    /// <summary>
    /// Removes a run folder, also one a crashed process left behind. Another remover may be at it too (a
    /// run that ends while the cleaner removes its crashed instance's leftovers): what vanishes meanwhile
    /// is gone either way, so the removal looks again rather than fail.
    /// </summary>
    public static void Remove(string path)
    {
        const int Attempts = 5;
        Libc.Unmount(System.IO.Path.Combine(path, "work"));
        for (var attempt = 1; Directory.Exists(path); attempt++)
        {
            try
            {
                Directory.Delete(path, recursive: true);
            }
            catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException && attempt < Attempts)
            {
                // Part of it went while we walked it.
            }
        }
    }

    private void WriteFile(string name, byte[] content)
    {
        if (name.Length == 0 || name != System.IO.Path.GetFileName(name) || name is "." or ".." or "out")
        {
            throw new ArgumentException($"'{name}' is not a plain file name", nameof(name));
        }
        var path = System.IO.Path.Combine(WorkPath, name);
        File.WriteAllBytes(path, content);
        File.SetUnixFileMode(path, ReadableFile);
        Libc.ChangeOwner(path, _uid, _uid);
    }
}
