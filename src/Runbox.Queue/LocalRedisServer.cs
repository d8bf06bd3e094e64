using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Runbox.Queue;

/// <summary>
/// A private <c>redis-server</c> child for the embedded default: listens on a free loopback port behind
/// a password made for this start (StackExchange.Redis connection strings cannot name a unix
/// socket, and the address must work as a plain connection string), persists with AOF
/// (<c>appendfsync everysec</c>, no RDB snapshots), never evicts, and is stopped on dispose
/// (SHUTDOWN, which flushes the AOF, then kill). A pidfile in the data folder makes the next start
/// stop a server that a crashed run left behind, so no orphan outlives two runs. A server that dies
/// while we run (the OOM killer, a crash, a stray kill) is started again on the same port with the same
/// password and files, so it replays its AOF and the clients' automatic reconnect finds it: the service
/// loses at most the last second of queue writes, which the reconciler restores from the store.
/// </summary>
public sealed class LocalRedisServer : IAsyncDisposable
{
    public const string PidFileName = "redis.pid";
    private const string ConfigFileName = "redis.conf";
    private const string LogFileName = "redis.log";
    private const int PortAttempts = 3;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan FirstRestartDelay = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan LongestRestartDelay = TimeSpan.FromSeconds(30);

    private readonly string executable;
    private readonly string configFile;
    private readonly IPEndPoint endPoint;
    private readonly string password;
    private readonly ILogger logger;
    private readonly EventHandler onProcessExit;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task watching;
    private volatile Process process;
    private int disposed;

    private LocalRedisServer(string executable, string configFile, Process process, IPEndPoint endPoint, string password, string connectionString, string dataDirectory, ILogger logger)
    {
        this.executable = executable;
        this.configFile = configFile;
        this.process = process;
        this.endPoint = endPoint;
        this.password = password;
        this.logger = logger;
        ConnectionString = connectionString;
        DataDirectory = dataDirectory;
        // Last resort when the host exits without disposing (e.g. an unhandled exception).
        onProcessExit = (_, _) => Kill(this.process);
        AppDomain.CurrentDomain.ProcessExit += onProcessExit;
        watching = WatchAsync(stopping.Token);
    }

    /// <summary>A StackExchange.Redis connection string for this server.</summary>
    public string ConnectionString { get; }

    public string DataDirectory { get; }

    /// <summary>The pid of the redis-server now serving (a new one after each restart).</summary>
    public int ProcessId => process.Id;

    /// <summary>How many times the server was started again after it died.</summary>
    public int Restarts { get; private set; }

    /// <summary>Starts redis-server with its files in <paramref name="dataDirectory"/> and waits until it answers PING.</summary>
    public static async Task<LocalRedisServer> StartAsync(string dataDirectory, ILogger logger, CancellationToken cancellationToken)
    {
        var executable = FindOnPath("redis-server") ?? throw new InvalidOperationException(
            "redis-server was not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install redis-server; " +
            "Fedora: sudo dnf install redis; macOS: brew install redis) or configure Runbox:Redis to use an existing server.");
        var directory = Path.GetFullPath(dataDirectory);
        Directory.CreateDirectory(directory);
        var pidFile = Path.Combine(directory, PidFileName);
        await StopLeftoverAsync(pidFile, logger);

        // A fresh password per start keeps other local users out of the loopback port; it lives only in
        // a config file readable by us, never on the command line (which anyone can read in /proc).
        var password = RandomNumberGenerator.GetHexString(32, lowercase: true);
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeLoopbackPort();
            var config = Path.Combine(directory, ConfigFileName);
            await WriteConfigAsync(config, directory, pidFile, port, password);
            var process = await LaunchAsync(executable, config);
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            try
            {
                await WaitUntilAnswersAsync(process, endPoint, password, directory, cancellationToken);
            }
            catch (RedisStartException) when (attempt < PortAttempts)
            {
                // Most likely another process took the free port between our probe and redis binding it.
                process.Dispose();
                continue;
            }
            catch
            {
                Kill(process);
                process.Dispose();
                throw;
            }
            var connectionString = $"127.0.0.1:{port},password={password}";
            Log.RedisStarted(logger, process.Id, endPoint.ToString(), directory);
            return new LocalRedisServer(executable, config, process, endPoint, password, connectionString, directory, logger);
        }
    }

    private static async Task<Process> LaunchAsync(string executable, string configFile)
    {
        var directory = Path.GetDirectoryName(configFile)!;
        var process = Process.Start(new ProcessStartInfo(executable, [configFile]) { UseShellExecute = false, WorkingDirectory = directory })
            ?? throw new InvalidOperationException("redis-server did not start.");
        // Written before redis writes it too, so a crash of ours during startup still leaves a trace.
        await File.WriteAllTextAsync(Path.Combine(directory, PidFileName), process.Id.ToString(CultureInfo.InvariantCulture), CancellationToken.None);
        return process;
    }

    /// <summary>
    /// Starts the server again whenever it dies, until disposed: same config file (port, password, AOF),
    /// waiting longer after each start that did not last (200 ms, doubling up to 30 s), so a server that
    /// cannot start (its port taken, its disk full) is retried without a busy loop.
    /// </summary>
    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        var delay = FirstRestartDelay;
        try
        {
            while (true)
            {
                var current = process;
                var started = Stopwatch.GetTimestamp();
                await current.WaitForExitAsync(cancellationToken);
                Log.RedisDied(logger, current.Id, current.ExitCode, ReadLogTail(DataDirectory));
                // A server that ran a while starts the waits afresh; one that died soon after a restart waits longer.
                if (Stopwatch.GetElapsedTime(started) > LongestRestartDelay)
                {
                    delay = FirstRestartDelay;
                }
                (process, delay) = await StartAgainAsync(delay, cancellationToken);
                current.Dispose();
                Restarts++;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed: DisposeAsync stops whichever server runs now.
        }
    }

    /// <summary>Starts the server until it answers, waiting <paramref name="delay"/> (doubled after each try) first.</summary>
    private async Task<(Process Server, TimeSpan NextDelay)> StartAgainAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, LongestRestartDelay.Ticks));
            Process? next = null;
            try
            {
                next = await LaunchAsync(executable, configFile);
                await WaitUntilAnswersAsync(next, endPoint, password, DataDirectory, cancellationToken);
                Log.RedisRestarted(logger, next.Id, endPoint.ToString());
                return (next, delay);
            }
            catch (Exception e)
            {
                if (next is not null)
                {
                    Kill(next);
                    next.Dispose();
                }
                if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                // Whatever stopped it (the port taken, the binary gone, a full disk), the next try may not meet.
                Log.RedisRestartFailed(logger, e.Message, delay);
            }
        }
    }

    private static async Task WriteConfigAsync(string path, string directory, string pidFile, int port, string password)
    {
        var lines = new[]
        {
            "daemonize no",
            $"dir {Quote(directory)}",
            $"pidfile {Quote(pidFile)}",
            $"logfile {Quote(Path.Combine(directory, LogFileName))}",
            "bind 127.0.0.1",
            $"port {port.ToString(CultureInfo.InvariantCulture)}",
            $"requirepass {password}",
            "appendonly yes",
            "appendfsync everysec",
            "save \"\"",
            $"maxmemory-policy {RedisHealth.RequiredPolicy}",
        };
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        // The mode applies only to a file being created, so the old one goes first.
        File.Delete(path);
        await using var writer = new StreamWriter(path, options);
        foreach (var line in lines)
        {
            await writer.WriteLineAsync(line);
        }
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }
        AppDomain.CurrentDomain.ProcessExit -= onProcessExit;
        await stopping.CancelAsync();
        await watching;
        stopping.Dispose();
        var process = this.process;
        try
        {
            if (!process.HasExited)
            {
                // SHUTDOWN flushes the AOF; the server closes the connection instead of answering.
                await SendAsync(endPoint, password, "SHUTDOWN", CancellationToken.None);
            }
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            // Not answering: the kill below still stops it.
        }
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
            Log.RedisStopped(logger, process.Id);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            Log.RedisKilled(logger, process.Id);
        }
        process.Dispose();
    }

    private static async Task StopLeftoverAsync(string pidFile, ILogger logger)
    {
        if (!File.Exists(pidFile) || !int.TryParse(await File.ReadAllTextAsync(pidFile), out var pid) || !IsLiveRedisServer(pid))
        {
            return;
        }
        Log.OrphanStopped(logger, pid);
        try
        {
            using var leftover = Process.GetProcessById(pid);
            Kill(leftover);
        }
        catch (ArgumentException)
        {
            return;
        }
        // Not our child, so not ours to wait for: watch /proc until it is gone (or a zombie).
        var deadline = Stopwatch.StartNew();
        while (IsLiveRedisServer(pid))
        {
            if (deadline.Elapsed > StopTimeout)
            {
                throw new InvalidOperationException($"A redis-server left by a previous run (pid {pid}) holds {Path.GetDirectoryName(pidFile)} and could not be stopped.");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }
    }

    /// <summary>
    /// Whether <paramref name="pid"/> is a running redis-server. Pids are reused, so the name must
    /// match; a zombie counts as gone (it holds no port and no files).
    /// </summary>
    internal static bool IsLiveRedisServer(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        // "pid (comm) state ...": comm may hold spaces and parentheses, so cut at the last ')'.
        var open = stat.IndexOf('(', StringComparison.Ordinal);
        var close = stat.LastIndexOf(')');
        if (open < 0 || close < open || close + 2 >= stat.Length)
        {
            return false;
        }
        var state = stat[close + 2];
        return stat[(open + 1)..close] == "redis-server" && state is not ('Z' or 'X');
    }

    private static async Task WaitUntilAnswersAsync(Process process, EndPoint endPoint, string password, string directory, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StartTimeout);
        while (true)
        {
            if (process.HasExited)
            {
                throw new RedisStartException(
                    $"redis-server exited with code {process.ExitCode} while starting. Its log:{Environment.NewLine}{ReadLogTail(directory)}");
            }
            try
            {
                if (await SendAsync(endPoint, password, "PING", timeout.Token) == "+PONG")
                {
                    return;
                }
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                // Not listening yet.
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"redis-server did not answer within {StartTimeout}. Its log:{Environment.NewLine}{ReadLogTail(directory)}");
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"redis-server did not answer within {StartTimeout}. Its log:{Environment.NewLine}{ReadLogTail(directory)}");
            }
        }
    }

    /// <summary>
    /// Authenticates and sends one inline command; returns the command's first reply line (null when
    /// the server closed the connection, as SHUTDOWN does). Needs no client library.
    /// </summary>
    private static async Task<string?> SendAsync(EndPoint endPoint, string password, string command, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint, cancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"AUTH {password}\r\n{command}\r\n"), cancellationToken);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var auth = await reader.ReadLineAsync(cancellationToken);
        return auth == "+OK" ? await reader.ReadLineAsync(cancellationToken) : auth;
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception)
        {
            // It exited between the check and the kill.
        }
    }

    private static string ReadLogTail(string directory)
    {
        var log = Path.Combine(directory, LogFileName);
        return File.Exists(log) ? string.Join(Environment.NewLine, File.ReadLines(log).TakeLast(20)) : "(no log written)";
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);
}

/// <summary>redis-server exited while starting.</summary>
public sealed class RedisStartException(string message) : InvalidOperationException(message);
