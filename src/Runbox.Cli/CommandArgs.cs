namespace Runbox.Cli;

/// <summary>
/// The command line after the command name: positionals, <c>--name value</c> options and
/// <c>--switch</c> flags. Small on purpose: every command declares which switches it has.
/// </summary>
public sealed class CommandArgs
{
    private readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _switches = new(StringComparer.Ordinal);

    public IReadOnlyList<string> Positionals { get; }

    private CommandArgs(List<string> positionals) => Positionals = positionals;

    /// <exception cref="UsageException">An option lacks its value or is unknown.</exception>
    public static CommandArgs Parse(IEnumerable<string> args, HashSet<string> switches, HashSet<string> options)
    {
        var positionals = new List<string>();
        var parsed = new CommandArgs(positionals);
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (arg == "--")
            {
                while (e.MoveNext())
                {
                    positionals.Add(e.Current);
                }
                break;
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                positionals.Add(arg);
                continue;
            }

            var name = arg[2..];
            string? inline = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }
            if (switches.Contains(name) && inline is null)
            {
                parsed._switches.Add(name);
            }
            else if (options.Contains(name))
            {
                if (inline is null && !e.MoveNext())
                {
                    throw new UsageException($"--{name} needs a value.");
                }
                parsed._options[name] = inline ?? e.Current;
            }
            else
            {
                throw new UsageException($"Unknown option --{name}.");
            }
        }
        return parsed;
    }

    public string? Option(string name) => _options.GetValueOrDefault(name);

    public bool Switch(string name) => _switches.Contains(name);

    public int? IntOption(string name, int min, int max)
    {
        var text = Option(name);
        if (text is null)
        {
            return null;
        }
        return int.TryParse(text, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"--{name} must be a whole number from {min} to {max}.");
    }
}

public sealed class UsageException(string message) : Exception(message);
