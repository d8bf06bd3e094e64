using Runbox.Cli;
using Runbox.Cli.Client;
using Runbox.Cli.Server;

// Runbox runs containers through Linux OCI runtimes; the program is Linux-only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

const string Usage = """
    runbox: run untrusted code in containers, queued by priority with per-user limits.

    Server roles:
      runbox serve  [--port 8080] [--data ./data] [--slots N]   API + workers, embedded SQLite and Redis
      runbox api    [--port 8080] [--data ./data]               the HTTP API only
      runbox worker [--port 8081] [--data ./data] [--slots N]   a worker only
        (--store sqlite:PATH|<postgres connection string>, --redis <StackExchange.Redis connection string>)

    Client (server from --server or RUNBOX_URL, default http://127.0.0.1:8080; key from --key or RUNBOX_API_KEY):
      runbox submit FILE [--lang L] [--stdin TEXT|--stdin-file F] [--priority 0-9] [--wait]
      runbox status ID | watch ID | cancel ID | retry ID
      runbox dlq [list | requeue ID]
      runbox languages
      runbox bench [--tasks 100] [--concurrency 16] [--mix hello|hello-mixed|sleep|cpu|mixed]
                   [--priority 5|1-9] [--keys k1,k2*8] [--warmup N] [--report FILE] [--baseline]
    """;

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}

using var cancel = new CancellationTokenSource();
var command = args[0];
var rest = args[1..];
try
{
    if (command is "serve" or "api" or "worker")
    {
        // The host handles SIGTERM and Ctrl-C itself (graceful shutdown of the worker pool).
        var role = command switch { "serve" => Role.Serve, "api" => Role.Api, _ => Role.Worker };
        return await ServerHost.RunAsync(role, rest, CancellationToken.None);
    }

    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cancel.Cancel();
    };
    return command == "bench"
        ? await Runbox.Cli.Bench.LoadGenerator.RunAsync(rest, cancel.Token)
        : await ClientCommands.RunAsync(command, rest, cancel.Token);
}
catch (UsageException exception)
{
    Console.Error.WriteLine($"runbox: {exception.Message}");
    Console.Error.WriteLine("Run `runbox --help` for usage.");
    return 2;
}
catch (Runbox.Cli.Server.StartupRefusedException exception)
{
    Console.Error.WriteLine($"runbox: cannot start: {exception.Message}");
    return Runbox.Cli.Server.StartupRefusedException.ExitCode;
}
catch (ApiException exception)
{
    Console.Error.WriteLine($"runbox: {exception.Message}");
    return exception.Status == 404 ? 4 : 3;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    return 130;
}
