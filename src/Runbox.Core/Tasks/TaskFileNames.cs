namespace Runbox.Core.Tasks;

/// <summary>
/// The one rule for the names of a task's files in /work, kept by the validator (a clear 400) and by
/// the sandbox (which writes them), so that nothing the API accepts can fail a run. A name is a relative
/// path: <c>util.py</c>, <c>pkg/util.py</c>, <c>com/example/Util.java</c>.
/// </summary>
public static class TaskFileNames
{
    public const int MaxLength = 128;

    /// <summary>Folder levels a name may have (<c>a/b/c/d/e/f/g/h.txt</c> is the deepest).</summary>
    public const int MaxSegments = 8;

    /// <summary>The folder for artifacts; the program's own, never given files.</summary>
    public const string OutputFolder = "out";

    /// <summary>What is wrong with one name, or null when it is fine.</summary>
    public static string? Check(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "is required.";
        }
        if (name.Length > MaxLength)
        {
            return $"must be at most {MaxLength} characters.";
        }
        if (name.StartsWith('/'))
        {
            return "must be a relative path, not an absolute one.";
        }
        if (name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '/')))
        {
            return "may contain only letters, digits, '.', '_', '-' and '/'.";
        }
        var segments = name.Split('/');
        if (segments.Any(s => s is "" or "." or ".."))
        {
            return "must not contain empty, '.' or '..' path segments.";
        }
        if (segments.Length > MaxSegments)
        {
            return $"must have at most {MaxSegments} path segments.";
        }
        if (segments[0] == OutputFolder)
        {
            return $"must not be under {OutputFolder}/, which is reserved for artifacts.";
        }
        return null;
    }

    /// <summary>
    /// What is wrong with a set of names that land in one /work, or null: each name by <see cref="Check(string?)"/>,
    /// then no name twice and no name that is also another's folder (<c>pkg</c> and <c>pkg/util.py</c>).
    /// The first name is the source file's.
    /// </summary>
    public static Problem? Check(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var files = new Dictionary<string, int>(StringComparer.Ordinal);
        var folders = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < names.Count; i++)
        {
            var name = names[i];
            if (Check(name) is { } problem)
            {
                return new Problem(i, problem);
            }
            if (files.TryGetValue(name, out var first) || folders.TryGetValue(name, out first))
            {
                return new Problem(i, Clash(name, first, names));
            }
            for (var slash = name.IndexOf('/'); slash > 0; slash = name.IndexOf('/', slash + 1))
            {
                if (files.TryGetValue(name[..slash], out var file))
                {
                    return new Problem(i, $"'{name}' needs a folder '{name[..slash]}', which is {Describe(file, names)}.");
                }
                folders.TryAdd(name[..slash], i);
            }
            files[name] = i;
        }
        return null;
    }

    private static string Clash(string name, int first, IReadOnlyList<string> names) =>
        first == 0 ? $"'{name}' is the name of the source file." : $"'{name}' is given twice, or is also a folder of another file ({names[first]}).";

    private static string Describe(int index, IReadOnlyList<string> names) =>
        index == 0 ? "the source file" : $"a file too ({names[index]})";

    /// <summary>The name at <paramref name="Index"/> (0 is the source file) and what is wrong with it.</summary>
    public sealed record Problem(int Index, string Message);
}
