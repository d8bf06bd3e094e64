using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Runbox.Api.Contracts;
using Runbox.Cli.Client;

namespace Runbox.Cli.Bench;

/// <summary>
/// `runbox bench`: submits N tasks of a chosen mix at a chosen concurrency against a running server,
/// waits for all, and reports throughput, latency percentiles, verdicts, peak concurrency, server
/// memory and whether every task reached the state it should. Bounded in count and time.
/// </summary>
public static class LoadGenerator
{
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromMinutes(10);

    public static async Task<int> RunAsync(string[] rest, CancellationToken cancellationToken)
    {
        var args = CommandArgs.Parse(rest, ["baseline", "json"], ["tasks", "concurrency", "mix", "keys", "priority", "report", "server", "key", "warmup"]);
        var tasks = args.IntOption("tasks", 1, 1_000_000) ?? 100;
        var concurrency = args.IntOption("concurrency", 1, 10_000) ?? 16;
        // Not counted: lets the JIT and the connection pools settle, on both sides of a comparison.
        var warmup = args.IntOption("warmup", 0, 100_000) ?? 0;
        var mixName = args.Option("mix") ?? "hello";
        var mix = Workloads.Mix(mixName);
        var priorities = ParsePriorities(args.Option("priority") ?? "5");
        var server = new Uri(args.Option("server") ?? Environment.GetEnvironmentVariable("RUNBOX_URL") ?? ClientCommands.DefaultServer);
        var keys = ParseKeys(args.Option("keys") ?? args.Option("key") ?? Environment.GetEnvironmentVariable("RUNBOX_API_KEY") ?? "");
        var clients = (keys.Count == 0 ? new string?[] { null } : keys.ToArray()).Select(k => new RunboxClient(server, k)).ToArray();

        double? baseline = null;
        if (args.Switch("baseline"))
        {
            // The runtime alone gets as many runs at once as the service has slots: the most the
            // service can run at once, so the comparison is of what each does per slot.
            var slots = (await clients[0].WorkersAsync(cancellationToken)).Sum(w => w.Slots);
            baseline = await BaselineRunner.RunAsync(mix, tasks, Math.Max(1, slots), warmup, cancellationToken);
        }
        Task<TaskSample> Submit(int i) => RunOneAsync(clients[i % clients.Length], i % clients.Length, mix[i % mix.Count], priorities[i % priorities.Length], cancellationToken);
        if (warmup > 0)
        {
            Console.Error.WriteLine($"warm-up: {warmup} tasks, not counted...");
            await ForEachAsync(warmup, concurrency, Submit, cancellationToken);
        }

        var samples = new TaskSample[tasks];
        var done = 0;
        using var progress = new ProgressLine(tasks, () => Volatile.Read(ref done));
        using var sampler = new MetricsSampler(clients[0]);
        var watch = Stopwatch.StartNew();
        await ForEachAsync(tasks, concurrency, async i =>
        {
            samples[i] = await Submit(i);
            Interlocked.Increment(ref done);
        }, cancellationToken);
        watch.Stop();
        progress.Dispose();

        var report = BenchReport.From(mixName, concurrency, samples, watch.Elapsed, await sampler.StopAsync(), baseline);
        Console.Write(report.ToTable());
        var json = JsonSerializer.Serialize(report, new JsonSerializerOptions(RunboxClient.Json) { WriteIndented = true });
        if (args.Option("report") is { } path)
        {
            await File.WriteAllTextAsync(path, json, cancellationToken);
            Console.WriteLine($"  report written to {path}");
        }
        if (args.Switch("json"))
        {
            Console.WriteLine(json);
        }
        foreach (var client in clients)
        {
            client.Dispose();
        }
        return report.Lost == 0 && report.Unexpected == 0 ? 0 : 1;
    }

    /// <summary>Runs <paramref name="body"/> for 0..count-1 with at most <paramref name="concurrency"/> in flight.</summary>
    private static async Task ForEachAsync(int count, int concurrency, Func<int, Task> body, CancellationToken cancellationToken)
    {
        using var gate = new SemaphoreSlim(concurrency);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                await body(i);
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    private static async Task<TaskSample> RunOneAsync(RunboxClient client, int user, WorkloadKind kind, int priority, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        TaskView? task = null;
        try
        {
            task = await client.SubmitAsync(kind.ToRequest(priority), null, cancellationToken, wait: true);
            // ?wait=true is bounded by the server; keep polling for the slow ones.
            while (!IsSettled(task.Status) && watch.Elapsed < SettleTimeout)
            {
                await Task.Delay(250, cancellationToken);
                task = await client.GetAsync(task.Id.ToString(), cancellationToken);
            }
            var elapsed = watch.Elapsed.TotalMilliseconds;
            if (!IsSettled(task.Status))
            {
                return Sample(kind, user, priority, task, false, elapsed, $"not settled after {SettleTimeout}", settled: false);
            }
            var expected = task.Status == kind.ExpectedStatus && task.Result?.Verdict == kind.ExpectedVerdict
                && (kind.ExpectedStdout is null || task.Result?.Stdout == kind.ExpectedStdout);
            return Sample(kind, user, priority, task, expected, elapsed,
                expected ? null : $"expected {kind.ExpectedStatus}/{kind.ExpectedVerdict}, got {task.Status}/{task.Result?.Verdict} {task.Result?.Error}", settled: true);
        }
        catch (Exception exception) when (exception is ApiException or HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return Sample(kind, user, priority, task, false, watch.Elapsed.TotalMilliseconds, exception.Message, settled: false);
        }
    }

    private static TaskSample Sample(WorkloadKind kind, int user, int priority, TaskView? task, bool expected, double elapsedMs, string? problem, bool settled)
    {
        var start = task?.StartedAt is { } started ? (started - task.CreatedAt).TotalMilliseconds : 0;
        return new TaskSample(kind.Name, task?.User ?? $"user{user}", priority, task?.Id.ToString(), settled ? task!.Status : null, task?.Result?.Verdict,
            expected, task?.Attempt ?? 0, start, elapsedMs, task?.StartedAt, task?.FinishedAt, problem);
    }

    private static bool IsSettled(string status) => status is "completed" or "failed" or "timeout" or "cancelled";

    /// <summary>
    /// <c>k1,k2</c> alternates users; <c>k1*8,k2,k3</c> gives k1 eight submissions for each of the
    /// others' one (one user flooding). The result is the cycle of keys, one entry per submission.
    /// </summary>
    private static List<string> ParseKeys(string text)
    {
        var cycle = new List<string>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var star = part.LastIndexOf('*');
            var weight = 1;
            if (star > 0 && (!int.TryParse(part[(star + 1)..], out weight) || weight is < 1 or > 1000))
            {
                throw new UsageException($"--keys: '{part}' must be KEY or KEY*WEIGHT with a weight from 1 to 1000.");
            }
            cycle.AddRange(Enumerable.Repeat(star > 0 ? part[..star] : part, weight));
        }
        return cycle;
    }

    private static int[] ParsePriorities(string text)
    {
        var parts = text.Split('-');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, out var v) && v is >= 0 and <= 9))
        {
            var from = int.Parse(parts[0], CultureInfo.InvariantCulture);
            var to = int.Parse(parts[^1], CultureInfo.InvariantCulture);
            return Enumerable.Range(Math.Min(from, to), Math.Abs(to - from) + 1).ToArray();
        }
        throw new UsageException("--priority is a priority 0-9 or a range such as 1-9 (cycled through).");
    }

    /// <summary>Samples the server's /metrics each second for its resident memory.</summary>
    private sealed class MetricsSampler : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<long?> _loop;

        public MetricsSampler(RunboxClient client) => _loop = LoopAsync(client);

        private async Task<long?> LoopAsync(RunboxClient client)
        {
            long? peak = null;
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var metrics = await client.MetricsAsync(_stop.Token);
                    var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("process_resident_memory_bytes ", StringComparison.Ordinal));
                    if (line is not null && double.TryParse(line.Split(' ')[1], CultureInfo.InvariantCulture, out var rss))
                    {
                        peak = Math.Max(peak ?? 0, (long)rss);
                    }
                    await Task.Delay(1000, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (Exception exception) when (exception is ApiException or HttpRequestException)
                {
                    // The server may be saturated; a missed sample is not a failed run.
                }
            }
            return peak;
        }

        public async Task<long?> StopAsync()
        {
            await _stop.CancelAsync();
            return await _loop;
        }

        public void Dispose() => _stop.Dispose();
    }

    /// <summary>A progress bar on an interactive stderr; a line every five seconds otherwise.</summary>
    private sealed class ProgressLine : IDisposable
    {
        private readonly Timer _timer;
        private readonly Stopwatch _watch = Stopwatch.StartNew();
        private readonly bool _interactive = !Console.IsErrorRedirected;
        private readonly int _total;
        private readonly Func<int> _done;

        public ProgressLine(int total, Func<int> done)
        {
            _total = total;
            _done = done;
            var period = _interactive ? TimeSpan.FromMilliseconds(250) : TimeSpan.FromSeconds(5);
            _timer = new Timer(_ => Draw(final: false), null, period, period);
        }

        private void Draw(bool final)
        {
            var done = _done();
            var fraction = _total == 0 ? 1 : (double)done / _total;
            var bar = new string('#', (int)(fraction * 30)).PadRight(30, '.');
            var rate = done / Math.Max(_watch.Elapsed.TotalSeconds, 1e-9);
            var line = string.Create(CultureInfo.InvariantCulture, $"[{bar}] {done}/{_total} {rate:F1}/s {_watch.Elapsed.TotalSeconds:F0}s");
            Console.Error.Write(_interactive ? $"\r{line}{(final ? "\n" : "")}" : line + "\n");
        }

        public void Dispose()
        {
            _timer.Dispose();
            if (_watch.IsRunning)
            {
                Draw(final: true);
                _watch.Stop();
            }
        }
    }
}
