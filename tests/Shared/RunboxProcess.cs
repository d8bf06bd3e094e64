using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Runbox.Tests.Shared;

/// <summary>
/// A real `runbox` server process (serve, api or worker) started from the built program, with its
/// own port and data folder. Its log is kept for failure messages.
/// </summary>
public sealed class RunboxProcess : IAsyncDisposable
{
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "runbox.dll");

    /// <summary>
    /// The program to start instead of <c>dotnet runbox.dll</c>, from <c>RUNBOX_TEST_PROGRAM</c>: an installed
    /// build (the package's <c>/usr/bin/runbox</c>) or a wrapper that runs it elsewhere (in the container
    /// image), given the same arguments and environment. Unset, the suites test the build next to them.
    /// </summary>
    /// <summary>
    /// How long a server may take to be ready: 90 s, or <c>RUNBOX_TEST_START_SECONDS</c> where the host is slow
    /// by design (an emulated VM, where a start takes minutes).
    /// </summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(
        int.TryParse(Environment.GetEnvironmentVariable("RUNBOX_TEST_START_SECONDS"), System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0 ? seconds : 90);

    private static readonly string? Launcher = Environment.GetEnvironmentVariable("RUNBOX_TEST_PROGRAM") is { Length: > 0 } launcher ? launcher : null;
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private RunboxProcess(Process process, int port, string dataDirectory)
    {
        _process = process;
        Port = port;
        DataDirectory = dataDirectory;
    }

    public int Port { get; }
    public string DataDirectory { get; }
    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static Task<RunboxProcess> StartAsync(string role, string dataDirectory, IDictionary<string, string> environment, int? port = null, params string[] extraArgs) =>
        StartCoreAsync(role, dataDirectory, environment, port, networkNamespace: null, extraArgs);

    /// <summary>
    /// Starts the server inside a network namespace (a /run/netns path), where the host cannot reach
    /// its port, so readiness is read from its log.
    /// </summary>
    public static Task<RunboxProcess> StartInNetworkAsync(string role, string dataDirectory, IDictionary<string, string> environment, string networkNamespace, params string[] extraArgs) =>
        StartCoreAsync(role, dataDirectory, environment, null, networkNamespace, extraArgs);

    private static async Task<RunboxProcess> StartCoreAsync(string role, string dataDirectory, IDictionary<string, string> environment, int? port, string? networkNamespace, string[] extraArgs)
    {
        port ??= FreePort();
        var start = CommandLine(networkNamespace is null ? [] : ["nsenter", $"--net={networkNamespace}", "--"], role, port.Value, dataDirectory, environment, extraArgs);
        start.Environment["Logging__Console__FormatterName"] = "simple";

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start runbox");
        var runbox = new RunboxProcess(process, port.Value, dataDirectory);
        process.OutputDataReceived += (_, e) => runbox.Append(e.Data);
        process.ErrorDataReceived += (_, e) => runbox.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            if (networkNamespace is null)
            {
                await runbox.WaitUntilLiveAsync(StartTimeout);
            }
            else
            {
                await runbox.WaitForLogAsync(new System.Text.RegularExpressions.Regex("Application started"), StartTimeout);
            }
        }
        catch
        {
            // A server that missed its start would run on unowned, holding its port and its runs.
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            process.Dispose();
            throw;
        }
        return runbox;
    }

    /// <summary>
    /// Runs the program to its end, as a server that refuses to start ends: its exit code and what it wrote to
    /// each stream. <paramref name="wrapper"/> is a command that runs it (under another user, in a mount
    /// namespace), followed by the program's own command line.
    /// </summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(
        string role, string dataDirectory, IDictionary<string, string> environment, IReadOnlyList<string>? wrapper = null)
    {
        var start = CommandLine(wrapper ?? [], role, FreePort(), dataDirectory, environment, []);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start runbox");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"runbox did not end within 90 s:\n{await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The program's command line (after <paramref name="wrapper"/>, a command that runs it) with its output redirected.</summary>
    private static ProcessStartInfo CommandLine(
        IReadOnlyList<string> wrapper, string role, int port, string dataDirectory, IDictionary<string, string> environment, IEnumerable<string> extraArgs)
    {
        var program = Launcher is null ? new[] { "dotnet", Program } : [Launcher];
        var command = wrapper.Concat(program)
            .Concat([role, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data", dataDirectory])
            .Concat(extraArgs)
            .ToList();
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        return start;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    private async Task WaitUntilLiveAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"runbox exited with {_process.ExitCode} before it was live:\n{Log}");
            }
            try
            {
                using var response = await http.GetAsync(new Uri(BaseAddress, "/health/ready"));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"runbox was not ready within {timeout}:\n{Log}");
    }

    public async Task WaitForLogAsync(System.Text.RegularExpressions.Regex pattern, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!pattern.IsMatch(Log))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"runbox exited with {_process.ExitCode}:\n{Log}");
            }
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"no log line matching {pattern} within {timeout}:\n{Log}");
            }
            await Task.Delay(200);
        }
    }

    /// <summary>The exit code once the process has ended.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>SIGTERM and wait: the graceful path.</summary>
    public async Task StopAsync(TimeSpan? timeout = null)
    {
        if (_process.HasExited)
        {
            return;
        }
        Signal("TERM");
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await StopAsync(TimeSpan.FromSeconds(30));
        }
        _process.Dispose();
    }

    /// <summary>The prefix of this server's containers and cgroups, as its sandbox logged it at startup.</summary>
    public string? ContainerPrefix =>
        System.Text.RegularExpressions.Regex.Match(Log, @"container prefix (rbx-[0-9a-f]+-)") is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The worker id this server logged at startup.</summary>
    public string? WorkerId =>
        System.Text.RegularExpressions.Regex.Match(Log, @"Worker (\S+) started with") is { Success: true } m ? m.Groups[1].Value : null;

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
