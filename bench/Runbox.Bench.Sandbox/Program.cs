// Sandbox benchmark: lifecycle overhead per run against the bare process, and 100 concurrent runs.
// Usage: dotnet run -c Release --project bench/Runbox.Bench.Sandbox -- [--runtime auto|crun|runc] [--runs N] [--concurrent N]
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Limits;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Sandbox;

var runtime = Argument("--runtime", "auto");
var runs = int.Parse(Argument("--runs", "100"), CultureInfo.InvariantCulture);
var concurrent = int.Parse(Argument("--concurrent", "100"), CultureInfo.InvariantCulture);

using var loggerFactory = LoggerFactory.Create(builder => builder.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
var options = new SandboxOptions { Runtime = runtime, StateDirectory = Path.Combine(Path.GetTempPath(), "runbox-bench-sandbox") };
await using var sandbox = new OciSandbox(Options.Create(options), loggerFactory.CreateLogger<OciSandbox>(), TimeProvider.System);
await sandbox.InitializeAsync(CancellationToken.None);
var limits = Limits.Default with { WallTime = TimeSpan.FromSeconds(30), CpuTime = TimeSpan.FromSeconds(30) };

Console.WriteLine($"runtime {sandbox.RuntimeName}, {runs} runs each (after 5 warm-up runs), {Environment.ProcessorCount} CPUs, load {File.ReadAllText("/proc/loadavg").Trim()}");
Console.WriteLine("| command | bare median | bare p95 | sandbox median | sandbox p95 | overhead (median) |");
Console.WriteLine("|---|---|---|---|---|---|");
await CompareAsync("/bin/true", ["/bin/true"]);
await CompareAsync("python3 -c pass", ["/usr/bin/python3", "-c", "pass"]);

// The public path: a python task through ISandbox.RunAsync (writes main.py into /work, collects artifacts).
var task = new List<double>();
for (var i = 0; i < runs + 5; i++)
{
    var watch = Stopwatch.StartNew();
    await sandbox.RunAsync(new TaskSpec { User = "bench", Language = "python", Source = "pass", Limits = limits }, NullOutputSink.Instance, CancellationToken.None);
    if (i >= 5)
    {
        task.Add(watch.Elapsed.TotalMilliseconds);
    }
}
Console.WriteLine($"| ISandbox.RunAsync python task `pass` | | | {Median(task):F1} | {P95(task):F1} | |");

var total = Stopwatch.StartNew();
// Each run on its own pool thread, as worker slots would start them, so no run waits for another's launch.
var sleeps = await Task.WhenAll(Enumerable.Range(0, concurrent).Select(_ => Task.Run(async () =>
{
    var watch = Stopwatch.StartNew();
    await sandbox.RunCommandAsync(["/bin/sleep", "1"], limits, CancellationToken.None);
    return watch.Elapsed.TotalMilliseconds;
})));
Console.WriteLine();
Console.WriteLine($"{concurrent} concurrent `sleep 1`: total wall {total.Elapsed.TotalMilliseconds:F0} ms; per run min {sleeps.Min():F0} / median {Median([.. sleeps]):F0} / max {sleeps.Max():F0} ms");

async Task CompareAsync(string label, string[] command)
{
    var bare = new List<double>();
    var boxed = new List<double>();
    // Alternate bare and sandboxed runs so both see the same background load.
    for (var i = 0; i < runs + 5; i++)
    {
        var watch = Stopwatch.StartNew();
        using (var process = Process.Start(new ProcessStartInfo(command[0], command[1..]) { RedirectStandardOutput = true, RedirectStandardError = true })!)
        {
            await process.WaitForExitAsync();
        }
        var bareMs = watch.Elapsed.TotalMilliseconds;
        watch.Restart();
        await sandbox.RunCommandAsync(command, limits, CancellationToken.None);
        var boxedMs = watch.Elapsed.TotalMilliseconds;
        if (i >= 5)
        {
            bare.Add(bareMs);
            boxed.Add(boxedMs);
        }
    }
    Console.WriteLine($"| `{label}` | {Median(bare):F1} | {P95(bare):F1} | {Median(boxed):F1} | {P95(boxed):F1} | {Median(boxed) - Median(bare):F1} |");
}

static double Median(List<double> values) => Percentile(values, 0.5);

static double P95(List<double> values) => Percentile(values, 0.95);

static double Percentile(List<double> values, double p)
{
    var sorted = values.Order().ToList();
    return sorted[(int)Math.Round(p * (sorted.Count - 1))];
}

string Argument(string name, string fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
}
