using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Runbox.Api;
using Runbox.Core.Limits;
using Runbox.Core.Seams;
using Runbox.Core.Validation;
using Runbox.Sandbox;

namespace Runbox.Cli.Bench;

/// <summary>
/// The ceiling the service is measured against: the same programs with the same limits run straight
/// through the sandbox (the OCI runtime lifecycle) at the same concurrency, with no API, queue or store.
/// </summary>
public static class BaselineRunner
{
    public static async Task<double> RunAsync(IReadOnlyList<WorkloadKind> mix, int tasks, int concurrency, int warmup, CancellationToken cancellationToken)
    {
        var state = Path.Combine(Path.GetTempPath(), "runbox-bench-baseline-" + Environment.ProcessId);
        var services = new ServiceCollection()
            // The sandbox binds its options from configuration; the baseline runs on the defaults.
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().Build())
            .AddLogging(l => l.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning))
            .AddRunboxSandbox(o => o.StateDirectory = state);
        await using var provider = services.BuildServiceProvider();
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(cancellationToken);
        }
        var sandbox = provider.GetRequiredService<ISandbox>();

        var json = new JsonSerializerOptions();
        ApiServiceCollectionExtensions.Configure(json);
        var validator = new TaskSubmissionValidator(LimitPolicy.Default, sandbox.Languages);
        var specs = mix.Select(kind =>
        {
            var submission = kind.ToRequest(5).Deserialize<TaskSubmission>(json)!;
            var result = validator.Validate(submission, "baseline");
            return result.Spec ?? throw new InvalidOperationException($"workload {kind.Name} is invalid here: {string.Join("; ", result.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"))}");
        }).ToList();

        Console.Error.WriteLine($"baseline: {tasks} runs (after {warmup} warm-up runs) through the sandbox alone, {concurrency} at once...");
        await RunManyAsync(sandbox, specs, warmup, concurrency, cancellationToken);
        var watch = Stopwatch.StartNew();
        await RunManyAsync(sandbox, specs, tasks, concurrency, cancellationToken);
        watch.Stop();
        try
        {
            Directory.Delete(state, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the sandbox cleans its own runs; only the prepared rootfs may remain.
        }
        return tasks / watch.Elapsed.TotalSeconds;
    }

    private static async Task RunManyAsync(ISandbox sandbox, List<Core.Tasks.TaskSpec> specs, int count, int concurrency, CancellationToken cancellationToken)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, count)).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                await sandbox.RunAsync(specs[i % specs.Count], NullOutputSink.Instance, cancellationToken);
            }
        }));
    }
}
