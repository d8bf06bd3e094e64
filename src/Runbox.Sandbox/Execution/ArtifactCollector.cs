using System.Text;
using Runbox.Core.Execution;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Execution;

/// <summary>What came back from /work/out: the files, and a note on what was left out and why (null when nothing was).</summary>
internal sealed record ArtifactCollection(IReadOnlyList<Artifact> Files, string? Note)
{
    public static ArtifactCollection None(string note) => new([], note);
}

/// <summary>
/// Reads a run's /work/out after the run, as root, treating every byte of it as hostile: the program
/// owned the folder and may have replaced it or anything in it with a link, a FIFO, a socket, a tree
/// deeper than PATH_MAX or names that are not UTF-8. Everything goes through <see cref="ConfinedFolder"/>
/// (no link followed, no other mount entered, only regular files of /work's own tmpfs, non-blocking
/// opens, a byte budget); every refusal is skipped and noted, so nothing a program leaves there can fail
/// the attempt.
/// </summary>
internal static class ArtifactCollector
{
    /// <summary>Folder levels below out that are walked.</summary>
    public const int MaxDepth = 16;

    /// <summary>Longest artifact name (its path below out) that is returned.</summary>
    public const int MaxNameLength = 1024;

    private const int MaxNotedNames = 8;

    public static ArtifactCollection Collect(ConfinedFolder work, int maxCount, long maxTotalBytes)
    {
        using var output = work.OpenFolder("out", out var refusal);
        if (output is null)
        {
            return ArtifactCollection.None(refusal == "missing"
                ? "Artifacts: there was no out folder in /work at the end of the run."
                : $"Artifacts: out is not a folder ({refusal}); nothing was collected.");
        }

        var notes = new Notes();
        var candidates = new List<(string Name, long Size)>();
        Walk(output, "", 1, candidates, notes);
        candidates.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));

        var files = new List<Artifact>();
        long total = 0;
        foreach (var (name, _) in candidates)
        {
            if (files.Count == maxCount)
            {
                notes.Add(name, $"more than {maxCount} files");
                continue;
            }
            var content = output.ReadFile(name, maxTotalBytes - total, out var why);
            if (content is null)
            {
                notes.Add(name, why!);
                continue;
            }
            total += content.Length;
            files.Add(new Artifact(name, content));
        }
        return new ArtifactCollection(files, notes.Describe());
    }

    private static void Walk(ConfinedFolder folder, string prefix, int depth, List<(string Name, long Size)> candidates, Notes notes)
    {
        List<ConfinedFolder.Entry> entries;
        try
        {
            entries = folder.List();
        }
        catch (IOException e)
        {
            notes.Add(prefix.TrimEnd('/'), e.Message);
            return;
        }
        foreach (var entry in entries)
        {
            if (!TryDecode(entry.Name, out var leaf))
            {
                notes.NotUtf8();
                continue;
            }
            var name = prefix + leaf;
            if (name.Length > MaxNameLength)
            {
                notes.Add(name[..64] + "…", $"a name longer than {MaxNameLength} characters");
                continue;
            }
            switch (folder.Inspect(entry.Name))
            {
                case null:
                    break;
                case { Device: var device } when device != folder.Device:
                    notes.Add(name, "on another file system");
                    break;
                case { Type: ConfinedFolder.EntryType.File, Size: var size }:
                    candidates.Add((name, size));
                    break;
                case { Type: ConfinedFolder.EntryType.Folder } when depth == MaxDepth:
                    notes.Add(name, $"deeper than {MaxDepth} folders");
                    break;
                case { Type: ConfinedFolder.EntryType.Folder }:
                    using (var child = folder.OpenFolder(entry.Name, out var refusal))
                    {
                        if (child is null)
                        {
                            notes.Add(name, refusal!);
                        }
                        else
                        {
                            Walk(child, name + "/", depth + 1, candidates, notes);
                        }
                    }
                    break;
                case { Type: ConfinedFolder.EntryType.Link }:
                    notes.Add(name, "a symbolic link");
                    break;
                default:
                    notes.Add(name, "not a regular file");
                    break;
            }
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static bool TryDecode(byte[] name, out string text)
    {
        try
        {
            text = StrictUtf8.GetString(name);
            // A name is shown to people and put in URLs: control characters would garble both.
            return !text.Any(char.IsControl);
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }
    }

    /// <summary>The first few refusals by name, then counts, so a tree of a million links makes one short line.</summary>
    private sealed class Notes
    {
        private readonly List<string> _named = [];
        private int _more;
        private int _notUtf8;

        public void Add(string name, string reason)
        {
            if (_named.Count < MaxNotedNames)
            {
                _named.Add($"{name} ({reason})");
            }
            else
            {
                _more++;
            }
        }

        public void NotUtf8() => _notUtf8++;

        public string? Describe()
        {
            if (_named.Count == 0 && _notUtf8 == 0)
            {
                return null;
            }
            var parts = new List<string>(_named);
            if (_more > 0)
            {
                parts.Add($"{_more} more");
            }
            if (_notUtf8 > 0)
            {
                parts.Add($"{_notUtf8} with a name that is not UTF-8 or has control characters");
            }
            return "Artifacts skipped: " + string.Join("; ", parts) + ".";
        }
    }
}
