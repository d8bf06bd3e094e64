using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Runbox.Core.Tasks;

namespace Runbox.Core.Metrics;

/// <summary>
/// The process's counters and histograms, rendered in the Prometheus text format. Each process
/// (serve, api, worker) exposes its own; Prometheus sums across them.
/// </summary>
public sealed class RunboxMetrics
{
    private static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

    private readonly ConcurrentDictionary<string, long> _transitions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _verdicts = new(StringComparer.Ordinal);
    private readonly Histogram _wait = new(SecondsBuckets);
    private readonly Histogram _run = new(SecondsBuckets);
    private long _submitted;
    private long _staleWrites;
    private long _running;

    public void TaskSubmitted() => Interlocked.Increment(ref _submitted);

    public void Transitioned(TaskStatus to) => _transitions.AddOrUpdate(to.ToWire(), 1, (_, n) => n + 1);

    public void AttemptStarted(TimeSpan waited)
    {
        Interlocked.Increment(ref _running);
        _wait.Observe(waited.TotalSeconds);
    }

    public void AttemptFinished(string verdict, TimeSpan ran)
    {
        Interlocked.Decrement(ref _running);
        _verdicts.AddOrUpdate(verdict, 1, (_, n) => n + 1);
        _run.Observe(ran.TotalSeconds);
    }

    public void StaleWriteRefused() => Interlocked.Increment(ref _staleWrites);

    /// <summary>Renders every metric; <paramref name="gauges"/> adds point-in-time values such as queue depth.</summary>
    public string Render(IEnumerable<(string Name, string Help, string Labels, double Value)> gauges)
    {
        var text = new StringBuilder();
        Counter(text, "runbox_tasks_submitted_total", "Tasks accepted by this process.", Interlocked.Read(ref _submitted));
        Family(text, "runbox_task_transitions_total", "Status changes written by this process, by target status.", "counter", "status", _transitions);
        Family(text, "runbox_attempt_verdicts_total", "Attempts finished by this process, by verdict.", "counter", "verdict", _verdicts);
        Counter(text, "runbox_stale_writes_refused_total", "Worker writes refused because their fence was stale.", Interlocked.Read(ref _staleWrites));
        text.Append("# HELP runbox_attempts_running Attempts running in this process.\n# TYPE runbox_attempts_running gauge\n");
        text.Append(CultureInfo.InvariantCulture, $"runbox_attempts_running {Interlocked.Read(ref _running)}\n");
        _wait.Render(text, "runbox_task_wait_seconds", "Time from becoming pending to starting an attempt.");
        _run.Render(text, "runbox_attempt_run_seconds", "Wall time of attempts, sandbox included.");

        foreach (var group in gauges.GroupBy(g => g.Name))
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP {group.Key} {group.First().Help}\n# TYPE {group.Key} gauge\n");
            foreach (var (name, _, labels, value) in group)
            {
                text.Append(CultureInfo.InvariantCulture, $"{name}{(labels.Length > 0 ? "{" + labels + "}" : "")} {value}\n");
            }
        }
        return text.ToString();
    }

    private static void Counter(StringBuilder text, string name, string help, long value) =>
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");

    private static void Family(StringBuilder text, string name, string help, string type, string label, ConcurrentDictionary<string, long> values)
    {
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");
        foreach (var (key, value) in values.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"{name}{{{label}=\"{key}\"}} {value}\n");
        }
    }

    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1];
        private readonly Lock _lock = new();
        private double _sum;
        private long _count;

        public void Observe(double value)
        {
            lock (_lock)
            {
                var i = 0;
                while (i < bounds.Length && value > bounds[i])
                {
                    i++;
                }
                _counts[i]++;
                _sum += value;
                _count++;
            }
        }

        public void Render(StringBuilder text, string name, string help)
        {
            lock (_lock)
            {
                text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} histogram\n");
                long cumulative = 0;
                for (var i = 0; i < bounds.Length; i++)
                {
                    cumulative += _counts[i];
                    text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"{bounds[i]}\"}} {cumulative}\n");
                }
                text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"+Inf\"}} {_count}\n{name}_sum {_sum}\n{name}_count {_count}\n");
            }
        }
    }
}
