using System.Globalization;
using System.Text;

namespace Runbox.Cli.Bench;

/// <summary>What one task did, as the load generator saw it.</summary>
public sealed record TaskSample(
    string Kind,
    string User,
    int Priority,
    string? Id,
    string? Status,
    string? Verdict,
    bool AsExpected,
    int Attempt,
    double SubmitToStartMs,
    double SubmitToFinishMs,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    string? Problem);

public sealed record Percentiles(double P50, double P90, double P99, double Max)
{
    public static Percentiles Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return new Percentiles(0, 0, 0, 0);
        }
        double At(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return new Percentiles(At(0.50), At(0.90), At(0.99), sorted[^1]);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"p50 {P50:F1}  p90 {P90:F1}  p99 {P99:F1}  max {Max:F1} ms");
}

public sealed record BenchReport(
    string Mix,
    int Tasks,
    int Concurrency,
    double WallSeconds,
    double ThroughputPerSecond,
    Percentiles SubmitToStartMs,
    Percentiles SubmitToFinishMs,
    IReadOnlyDictionary<string, int> Verdicts,
    int AsExpected,
    int Unexpected,
    int Lost,
    int RetriedOrDuplicated,
    int PeakRunning,
    long? ServerPeakRssBytes,
    IReadOnlyDictionary<string, Percentiles> SubmitToStartByUser,
    IReadOnlyDictionary<string, Percentiles> SubmitToStartByPriority,
    IReadOnlyList<string> Problems,
    double? BaselineThroughputPerSecond)
{
    public static BenchReport From(string mix, int concurrency, IReadOnlyList<TaskSample> samples, TimeSpan wall, long? peakRss, double? baseline)
    {
        var started = samples.Where(s => s.StartedAt is not null).ToList();
        return new BenchReport(
            mix,
            samples.Count,
            concurrency,
            wall.TotalSeconds,
            samples.Count(s => s.Status is not null) / Math.Max(wall.TotalSeconds, 1e-9),
            Percentiles.Of(started.Select(s => s.SubmitToStartMs)),
            Percentiles.Of(samples.Where(s => s.Status is not null).Select(s => s.SubmitToFinishMs)),
            samples.GroupBy(s => s.Verdict ?? "none").OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
            samples.Count(s => s.AsExpected),
            samples.Count(s => !s.AsExpected && s.Status is not null),
            samples.Count(s => s.Status is null),
            samples.Count(s => s.Attempt > 1),
            PeakConcurrency(started),
            peakRss,
            started.GroupBy(s => s.User).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => Percentiles.Of(g.Select(s => s.SubmitToStartMs))),
            started.GroupBy(s => s.Priority).OrderByDescending(g => g.Key).ToDictionary(g => g.Key.ToString(CultureInfo.InvariantCulture), g => Percentiles.Of(g.Select(s => s.SubmitToStartMs))),
            samples.Where(s => s.Problem is not null).Select(s => $"{s.Id ?? "-"} {s.Kind}: {s.Problem}").Take(20).ToList(),
            baseline);
    }

    /// <summary>The most attempts running at one instant, from the server's own start and finish times.</summary>
    private static int PeakConcurrency(IEnumerable<TaskSample> samples)
    {
        var edges = samples
            .Where(s => s.StartedAt is not null && s.FinishedAt is not null)
            .SelectMany(s => new[] { (At: s.StartedAt!.Value, Delta: 1), (At: s.FinishedAt!.Value, Delta: -1) })
            .OrderBy(e => e.At).ThenBy(e => e.Delta);
        int running = 0, peak = 0;
        foreach (var edge in edges)
        {
            running += edge.Delta;
            peak = Math.Max(peak, running);
        }
        return peak;
    }

    public string ToTable()
    {
        var text = new StringBuilder();
        void Row(string name, string value) => text.Append(CultureInfo.InvariantCulture, $"  {name,-24} {value}\n");
        text.Append(CultureInfo.InvariantCulture, $"runbox bench: {Tasks} tasks, mix {Mix}, concurrency {Concurrency}\n");
        Row("wall time", string.Create(CultureInfo.InvariantCulture, $"{WallSeconds:F2} s"));
        Row("throughput", string.Create(CultureInfo.InvariantCulture, $"{ThroughputPerSecond:F1} tasks/s"));
        if (BaselineThroughputPerSecond is { } baseline)
        {
            Row("runtime alone", string.Create(CultureInfo.InvariantCulture, $"{baseline:F1} tasks/s (service at {ThroughputPerSecond / baseline:P0} of it)"));
        }
        Row("submit -> start", SubmitToStartMs.ToString());
        Row("submit -> finish", SubmitToFinishMs.ToString());
        Row("verdicts", string.Join(", ", Verdicts.Select(v => $"{v.Key} {v.Value}")));
        Row("as expected", $"{AsExpected}/{Tasks} (unexpected {Unexpected}, lost {Lost}, retried {RetriedOrDuplicated})");
        Row("peak running", PeakRunning.ToString(CultureInfo.InvariantCulture));
        if (ServerPeakRssBytes is { } rss)
        {
            Row("server peak RSS", string.Create(CultureInfo.InvariantCulture, $"{rss / (1024.0 * 1024):F0} MiB"));
        }
        if (SubmitToStartByUser.Count > 1)
        {
            foreach (var (user, p) in SubmitToStartByUser)
            {
                Row($"start wait, {user}", p.ToString());
            }
        }
        if (SubmitToStartByPriority.Count > 1)
        {
            foreach (var (priority, p) in SubmitToStartByPriority)
            {
                Row($"start wait, priority {priority}", p.ToString());
            }
        }
        foreach (var problem in Problems)
        {
            text.Append(CultureInfo.InvariantCulture, $"  ! {problem}\n");
        }
        return text.ToString();
    }
}
