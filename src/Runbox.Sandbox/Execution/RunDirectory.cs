using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Runbox.Core.Execution;
using Runbox.Core.Tasks;
using Runbox.Sandbox.Bundle;
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

    private readonly SandboxUids? _uids;
    private readonly string _mountPoint;
    private SafeFileHandle? _work;
    private bool _detached;
    private bool _failed;

    private RunDirectory(string path, int uid, SandboxUids? uids)
    {
        Path = path;
        Uid = uid;
        _uids = uids;
        _mountPoint = System.IO.Path.Combine(path, "work");
    }

    public string Path { get; }

    /// <summary>The run's own host uid: /work belongs to it, and every container of the run runs as it.</summary>
    public int Uid { get; }

    /// <summary>Where /work is mounted on the host, to bind into a container; gone once detached.</summary>
    public string WorkPath => _detached
        ? throw new InvalidOperationException("/work was detached from the host: no container can bind it any more")
        : _mountPoint;

    /// <summary>A run folder with its /work, and a uid of its own from <paramref name="uids"/> until dispose.</summary>
    public static RunDirectory Create(string runsDirectory, string runId, SandboxUids uids, long diskBytes) =>
        Create(runsDirectory, runId, uids.Rent(), uids, diskBytes);

    /// <summary>A run folder whose /work belongs to <paramref name="uid"/> (tests).</summary>
    public static RunDirectory Create(string runsDirectory, string runId, int uid, long diskBytes) =>
        Create(runsDirectory, runId, uid, null, diskBytes);

    private static RunDirectory Create(string runsDirectory, string runId, int uid, SandboxUids? uids, long diskBytes)
    {
        var run = new RunDirectory(System.IO.Path.Combine(runsDirectory, runId), uid, uids);
        Directory.CreateDirectory(run.WorkPath);
        try
        {
            var size = diskBytes.ToString(CultureInfo.InvariantCulture);
            Libc.MountTmpfs(run._mountPoint, Libc.MsNosuid | Libc.MsNodev,
                $"size={size},nr_inodes={OciBundleBuilder.MaxInodes},mode=0755,uid={uid},gid={uid}");
            run._work = Libc.OpenFolderPath(run._mountPoint);
            using var work = ConfinedFolder.Borrow(run._work);
            work.CreateFolders("out", uid);
        }
        catch
        {
            run.Dispose();
            throw;
        }
        return run;
    }

    /// <summary>
    /// Writes the source and the extra files into /work (creating their folders), owned by the sandbox user.
    /// Names were checked by the same rule at submission (<see cref="TaskFileNames"/>); the writes are
    /// confined to /work all the same.
    /// </summary>
    /// <exception cref="ArgumentException">A file name the rule refuses (validation missed it).</exception>
    public void WriteFiles(string sourceFile, string source, IReadOnlyList<TaskFile> files)
    {
        if (TaskFileNames.Check([sourceFile, .. files.Select(f => f.Name)]) is { } problem)
        {
            throw new ArgumentException(problem.Message, nameof(files));
        }
        using var work = ConfinedFolder.Borrow(_work!);
        work.CreateFile(sourceFile, Encoding.UTF8.GetBytes(source), Uid);
        foreach (var file in files)
        {
            work.CreateFile(file.Name, file.Decode(), Uid);
        }
    }

    /// <summary>
    /// Files under /work/out, in name order, bounded in count and total size, and a note on what was left
    /// out (see <see cref="ArtifactCollector"/>: the program may have made anything of out).
    /// </summary>
    public ArtifactCollection CollectArtifacts(int maxCount, long maxTotalBytes)
    {
        using var work = ConfinedFolder.Borrow(_work!);
        return ArtifactCollector.Collect(work, maxCount, maxTotalBytes);
    }

    /// <summary>
    /// Takes /work off the host's mount table; call once the last container that needs it is up (it keeps
    /// its own bind). Files stay reachable through the handle until dispose.
    /// </summary>
    public void DetachWork()
    {
        Libc.Unmount(_mountPoint);
        _detached = true;
    }

    /// <summary>The run did not end cleanly (the sandbox threw): its uid is checked for stragglers before it goes to another run.</summary>
    public void MarkFailed() => _failed = true;

    /// <summary>
    /// Unmounts /work, lets go of it and deletes the folder, and gives the uid back (call once every container
    /// of the run has ended); safe to call for a half-created run.
    /// </summary>
    public void Dispose()
    {
        _work?.Dispose();
        try
        {
            Remove(Path);
        }
        finally
        {
            _uids?.Return(Uid, killStragglers: _failed);
        }
    }

    /// <summary>
    /// Removes a run folder, also one a crashed process left behind, without following a link or entering
    /// a mount (<see cref="ConfinedFolder.RemoveTree"/>). Another remover may be at it too (a run that ends
    /// while the cleaner removes its crashed instance's leftovers): what vanishes meanwhile is gone either way.
    /// </summary>
    public static void Remove(string path)
    {
        Libc.Unmount(System.IO.Path.Combine(path, "work"));
        ConfinedFolder.RemoveTree(path);
    }
}
