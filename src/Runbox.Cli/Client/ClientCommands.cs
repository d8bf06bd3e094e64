using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Runbox.Api.Contracts;

namespace Runbox.Cli.Client;

/// <summary>The client commands: they talk to a running server over HTTP.</summary>
public static class ClientCommands
{
    public const string DefaultServer = "http://127.0.0.1:8080";

    private static readonly Dictionary<string, string> LanguageByExtension = new(StringComparer.OrdinalIgnoreCase)
    {
        [".py"] = "python",
        [".c"] = "c",
        [".cpp"] = "cpp",
        [".cc"] = "cpp",
        [".cxx"] = "cpp",
        [".js"] = "javascript",
        [".mjs"] = "javascript",
        [".sh"] = "bash",
        [".bash"] = "bash",
        [".java"] = "java",
    };

    private static readonly HashSet<string> CommonSwitches = ["json"];
    private static readonly HashSet<string> CommonOptions = ["server", "key"];

    public static async Task<int> RunAsync(string command, string[] rest, CancellationToken cancellationToken)
    {
        switch (command)
        {
            case "submit":
                return await SubmitAsync(Parse(rest, ["wait"], ["lang", "stdin", "stdin-file", "priority", "idempotency-key", "wall-time-ms", "memory-mb"]), cancellationToken);
            case "status":
                return await WithTaskAsync(rest, (c, id, json) => ShowAsync(c.GetAsync(id, cancellationToken), json));
            case "cancel":
                return await WithTaskAsync(rest, (c, id, json) => ShowAsync(c.CancelAsync(id, cancellationToken), json));
            case "retry":
                return await WithTaskAsync(rest, (c, id, json) => ShowAsync(c.RetryAsync(id, cancellationToken), json));
            case "watch":
                return await WithTaskAsync(rest, (c, id, _) => FollowAsync(c, id, cancellationToken));
            case "dlq":
                return await DeadLettersAsync(Parse(rest, [], []), cancellationToken);
            case "languages":
                return await LanguagesAsync(Parse(rest, [], []), cancellationToken);
            default:
                throw new UsageException($"Unknown command '{command}'.");
        }
    }

    private static CommandArgs Parse(string[] args, HashSet<string> switches, HashSet<string> options) =>
        CommandArgs.Parse(args, [.. switches, .. CommonSwitches], [.. options, .. CommonOptions]);

    private static RunboxClient Connect(CommandArgs args)
    {
        var server = args.Option("server") ?? Environment.GetEnvironmentVariable("RUNBOX_URL") ?? DefaultServer;
        if (!Uri.TryCreate(server, UriKind.Absolute, out var uri))
        {
            throw new UsageException($"--server '{server}' is not a URL.");
        }
        return new RunboxClient(uri, args.Option("key") ?? Environment.GetEnvironmentVariable("RUNBOX_API_KEY"));
    }

    private static async Task<int> WithTaskAsync(string[] rest, Func<RunboxClient, string, bool, Task<int>> action)
    {
        var args = Parse(rest, [], []);
        if (args.Positionals.Count != 1)
        {
            throw new UsageException("Give exactly one task id.");
        }
        using var client = Connect(args);
        return await action(client, args.Positionals[0], args.Switch("json"));
    }

    private static async Task<int> SubmitAsync(CommandArgs args, CancellationToken cancellationToken)
    {
        if (args.Positionals.Count != 1)
        {
            throw new UsageException("Usage: runbox submit FILE [--lang L] [--stdin TEXT | --stdin-file F] [--priority 0-9] [--wait]");
        }
        var file = args.Positionals[0];
        if (!File.Exists(file))
        {
            throw new UsageException($"No such file: {file}");
        }
        var language = args.Option("lang") ?? LanguageByExtension.GetValueOrDefault(Path.GetExtension(file))
            ?? throw new UsageException($"Cannot tell the language of '{file}' from its extension; pass --lang (see `runbox languages`).");

        var stdin = args.Option("stdin");
        if (args.Option("stdin-file") is { } stdinFile)
        {
            stdin = await File.ReadAllTextAsync(stdinFile, cancellationToken);
        }
        else if (stdin is null && Console.IsInputRedirected)
        {
            stdin = await Console.In.ReadToEndAsync(cancellationToken);
        }

        var body = new JsonObject
        {
            ["language"] = language,
            ["source"] = await File.ReadAllTextAsync(file, cancellationToken),
            ["stdin"] = stdin ?? "",
        };
        if (args.IntOption("priority", 0, 9) is { } priority)
        {
            body["priority"] = priority;
        }
        var limits = new JsonObject();
        if (args.IntOption("wall-time-ms", 1, int.MaxValue) is { } wall)
        {
            limits["wall_time_ms"] = wall;
        }
        if (args.IntOption("memory-mb", 1, int.MaxValue) is { } memory)
        {
            limits["memory_mb"] = memory;
        }
        if (limits.Count > 0)
        {
            body["limits"] = limits;
        }

        using var client = Connect(args);
        var task = await client.SubmitAsync(body, args.Option("idempotency-key"), cancellationToken);
        if (!args.Switch("wait"))
        {
            if (args.Switch("json"))
            {
                Console.WriteLine(JsonSerializer.Serialize(task, RunboxClient.Json));
            }
            else
            {
                Console.WriteLine(task.Id);
            }
            return 0;
        }
        return await FollowAsync(client, task.Id.ToString(), cancellationToken);
    }

    /// <summary>
    /// Streams a task's output live until it settles, then prints a summary to stderr and returns the
    /// program's exit code (124 for a time limit, 130 when cancelled, 1 for other failures without one).
    /// </summary>
    private static async Task<int> FollowAsync(RunboxClient client, string id, CancellationToken cancellationToken)
    {
        using var progress = new Progress();
        var stdout = Console.OpenStandardOutput();
        var stderr = Console.OpenStandardError();
        var streamed = false;
        await foreach (var (name, data) in client.EventsAsync(id, cancellationToken))
        {
            if (name == "status")
            {
                progress.Status(data.GetProperty("status").GetString() ?? "?", data.GetProperty("attempt").GetInt32());
            }
            else if (name == "output")
            {
                // Once the program speaks, its output owns the terminal.
                progress.Silence();
                streamed = true;
                var toStderr = data.GetProperty("stream").GetString() == "stderr";
                var shown = TerminalText.Shown(data.GetProperty("data").GetString() ?? "", toStderr ? !Console.IsErrorRedirected : !Console.IsOutputRedirected);
                var text = System.Text.Encoding.UTF8.GetBytes(shown);
                var target = toStderr ? stderr : stdout;
                await target.WriteAsync(text, cancellationToken);
                await target.FlushAsync(cancellationToken);
            }
        }
        progress.Clear();

        var task = await client.GetAsync(id, cancellationToken);
        var result = task.Result;
        if (result is null)
        {
            await Console.Error.WriteLineAsync($"task {task.Id}: {task.Status}");
            return task.Status == "cancelled" ? 130 : 1;
        }
        if (!streamed)
        {
            // The live events had expired (or the run ended before we connected): the stored result has it all.
            await Console.Out.WriteAsync(TerminalText.Shown(result.Stdout, !Console.IsOutputRedirected));
            await Console.Error.WriteAsync(TerminalText.Shown(result.Stderr, !Console.IsErrorRedirected));
        }
        if (result.Compile is { Succeeded: false } compile)
        {
            await Console.Error.WriteAsync(TerminalText.Shown(compile.Output, !Console.IsErrorRedirected));
        }
        await Console.Error.WriteLineAsync(
            $"[{task.Status}: {result.Verdict}, exit {result.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}{(result.Signal is null ? "" : $" ({result.Signal})")}, " +
            $"{result.WallTimeMs} ms wall, {result.CpuTimeMs} ms cpu, {result.MemoryPeakKb} KiB peak, attempt {task.Attempt}{(result.Error is null ? "" : $"; {result.Error}")}]");
        return result.Verdict switch
        {
            "ok" => 0,
            "time_limit" => 124,
            "cancelled" => 130,
            _ => result.ExitCode is > 0 and < 256 ? result.ExitCode.Value : 1,
        };
    }

    private static async Task<int> ShowAsync(Task<TaskView> call, bool json)
    {
        var task = await call;
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(task, RunboxClient.Json));
            return 0;
        }
        Console.WriteLine($"{task.Id}  {task.Status}  {task.Language}  priority {task.Priority}  attempt {task.Attempt}/{task.MaxAttempts}{(task.DeadLettered ? "  dead-lettered" : "")}");
        if (task.Result is { } result)
        {
            Console.WriteLine($"verdict {result.Verdict}, exit {result.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}, {result.WallTimeMs} ms wall, {result.CpuTimeMs} ms cpu, {result.MemoryPeakKb} KiB{(result.Error is null ? "" : $", {result.Error}")}");
            if (result.Stdout.Length > 0)
            {
                Console.WriteLine("--- stdout" + (result.StdoutTruncated ? " (truncated)" : ""));
                Console.Write(TerminalText.Shown(result.Stdout, !Console.IsOutputRedirected));
            }
            if (result.Stderr.Length > 0)
            {
                Console.WriteLine("--- stderr" + (result.StderrTruncated ? " (truncated)" : ""));
                Console.Write(TerminalText.Shown(result.Stderr, !Console.IsOutputRedirected));
            }
        }
        return 0;
    }

    private static async Task<int> DeadLettersAsync(CommandArgs args, CancellationToken cancellationToken)
    {
        using var client = Connect(args);
        var verb = args.Positionals.Count > 0 ? args.Positionals[0] : "list";
        if (verb == "requeue")
        {
            if (args.Positionals.Count != 2)
            {
                throw new UsageException("Usage: runbox dlq requeue ID");
            }
            return await ShowAsync(client.RequeueAsync(args.Positionals[1], cancellationToken), args.Switch("json"));
        }
        if (verb != "list")
        {
            throw new UsageException("Usage: runbox dlq [list | requeue ID]");
        }
        string? cursor = null;
        do
        {
            var page = await client.DeadLettersAsync(cursor, cancellationToken);
            foreach (var task in page.Items)
            {
                Console.WriteLine($"{task.Id}  {task.Status}  {task.Language}  attempts {task.Attempt}  {task.FinishedAt:u}  {task.Result?.Verdict ?? "-"}  {task.Result?.Error ?? ""}");
            }
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return 0;
    }

    private static async Task<int> LanguagesAsync(CommandArgs args, CancellationToken cancellationToken)
    {
        using var client = Connect(args);
        foreach (var language in await client.LanguagesAsync(cancellationToken))
        {
            Console.WriteLine($"{language.Id,-12} {language.Name,-12} {language.Version,-24} {language.SourceFile,-14} {(language.Compiled ? "compiled" : "interpreted")}");
        }
        return 0;
    }

    /// <summary>A one-line status with elapsed time on an interactive stderr; silent when redirected.</summary>
    private sealed class Progress : IDisposable
    {
        private static readonly string[] Frames = ["|", "/", "-", "\\"];
        private readonly bool _enabled = !Console.IsErrorRedirected;
        private readonly Stopwatch _watch = Stopwatch.StartNew();
        private readonly Timer? _timer;
        private readonly Lock _lock = new();
        private string _status = "submitted";
        private int _frame;
        private bool _shown;
        private bool _silenced;

        public Progress()
        {
            if (_enabled)
            {
                _timer = new Timer(_ => Draw(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(200));
            }
        }

        public void Status(string status, int attempt)
        {
            _status = attempt > 1 ? $"{status} (attempt {attempt})" : status;
            Draw();
        }

        public void Silence()
        {
            _silenced = true;
            Clear();
        }

        public void Clear()
        {
            lock (_lock)
            {
                if (_shown)
                {
                    Console.Error.Write("\r\u001b[2K");
                    _shown = false;
                }
            }
        }

        private void Draw()
        {
            if (!_enabled || _silenced)
            {
                return;
            }
            lock (_lock)
            {
                Console.Error.Write($"\r\u001b[2K{Frames[_frame++ % Frames.Length]} {_status} {_watch.Elapsed.TotalSeconds:F1}s");
                _shown = true;
            }
        }

        public void Dispose()
        {
            _timer?.Dispose();
            Clear();
        }
    }
}
