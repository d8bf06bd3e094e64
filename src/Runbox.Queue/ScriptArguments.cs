using System.Text.RegularExpressions;

namespace Runbox.Queue;

/// <summary>
/// The arguments (ARGV) one queue script takes, declared on the script's own first line so the script
/// and its callers read one schema:
/// <code>--! args: worker max lease_ms [release] (id fence)...</code>
/// Plain names are required; names in one pair of brackets at the end may be left off, from the last
/// one back; or one group in parentheses at the end, followed by "...", repeats one or more times. A script that gets the prelude (Lua/common.lua) takes the prelude's arguments
/// first. <see cref="RedisScripts"/> checks every call against its script's schema before Redis sees
/// it, so a caller that passes one argument too few fails with the script's schema in the message
/// instead of a script reading nil; a test checks that no script reads an ARGV index its schema does
/// not declare.
/// </summary>
internal sealed partial class ScriptArguments
{
    public const string Marker = "--! args:";

    private ScriptArguments(string script, IReadOnlyList<string> required, IReadOnlyList<string> optional, IReadOnlyList<string> group)
    {
        Script = script;
        Required = required;
        Optional = optional;
        Group = group;
    }

    public string Script { get; }

    public IReadOnlyList<string> Required { get; }

    public IReadOnlyList<string> Optional { get; }

    /// <summary>The repeated group, empty when the script takes a fixed list.</summary>
    public IReadOnlyList<string> Group { get; }

    /// <summary>The highest ARGV index (1-based) a script may read by number; a repeated group is read by a loop.</summary>
    public int LastFixedIndex => Required.Count + Optional.Count;

    /// <summary>Reads the schema from the first line of a script's text.</summary>
    /// <exception cref="FormatException">The first line declares no schema, or declares it wrongly.</exception>
    public static ScriptArguments Parse(string script, string text)
    {
        var end = text.IndexOf('\n', StringComparison.Ordinal);
        var firstLine = (end >= 0 ? text[..end] : text).TrimEnd('\r');
        if (!firstLine.StartsWith(Marker, StringComparison.Ordinal))
        {
            throw new FormatException($"{script}.lua does not start with its arguments (\"{Marker} ...\").");
        }
        var declaration = firstLine[Marker.Length..];
        var match = DeclarationPattern().Match(declaration);
        if (!match.Success)
        {
            throw new FormatException($"{script}.lua declares its arguments wrongly: \"{declaration.Trim()}\" (names, then [optional] names or one (group)...).");
        }
        var required = Names(match.Groups["required"]);
        var optional = Names(match.Groups["optional"]);
        var group = Names(match.Groups["group"]);
        var all = required.Concat(optional).Concat(group).ToList();
        if (all.Distinct(StringComparer.Ordinal).Count() != all.Count)
        {
            throw new FormatException($"{script}.lua names one argument twice: \"{declaration.Trim()}\".");
        }
        return new ScriptArguments(script, required, optional, group);
    }

    /// <summary>This schema with the prelude's arguments in front, as a script loaded with the prelude takes them.</summary>
    public ScriptArguments After(ScriptArguments prelude) =>
        prelude.Optional.Count > 0 || prelude.Group.Count > 0
            ? throw new InvalidOperationException($"The prelude {prelude.Script}.lua may only take required arguments.")
            : new ScriptArguments(Script, [.. prelude.Required, .. Required], Optional, Group);

    /// <exception cref="ArgumentException">A call with this many arguments does not fit the schema.</exception>
    public void Check(int count)
    {
        var fits = Group.Count > 0
            ? count > Required.Count && (count - Required.Count) % Group.Count == 0
            : count >= Required.Count && count <= LastFixedIndex;
        if (!fits)
        {
            throw new ArgumentException($"{Script}.lua takes {this}; the call passed {count} argument(s).");
        }
    }

    public override string ToString()
    {
        var parts = new List<string>(Required);
        parts.AddRange(Optional.Select(name => $"[{name}]"));
        if (Group.Count > 0)
        {
            parts.Add($"({string.Join(' ', Group)})...");
        }
        var shape = Group.Count > 0
            ? $"{Required.Count} + {Group.Count} per group, one group or more"
            : Optional.Count > 0 ? $"{Required.Count} to {LastFixedIndex}" : $"{Required.Count}";
        return $"{string.Join(' ', parts)} ({shape})";
    }

    private static List<string> Names(Group group) =>
        group.Success ? [.. group.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)] : [];

    [GeneratedRegex(@"^\s*(?<required>(?:[a-z][a-z0-9_]*\s*)*?)\s*(?:\[(?<optional>[a-z][a-z0-9_]*(?:\s+[a-z][a-z0-9_]*)*)\]|\((?<group>[a-z][a-z0-9_]*(?:\s+[a-z][a-z0-9_]*)*)\)\.\.\.)?\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex DeclarationPattern();
}
