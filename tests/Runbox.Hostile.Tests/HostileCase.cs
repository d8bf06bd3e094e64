using System.Text.Json.Nodes;

namespace Runbox.Hostile.Tests;

/// <summary>
/// One attack of the hostile suite: a program as an attacker would write it, submitted to a real
/// `runbox serve`, and what the task view must show afterwards (the safe outcome). Every case also gets
/// the checks every case has (<see cref="HostileSuite"/>): never internal_error, and a healthy service.
/// </summary>
public sealed record HostileCase(string Name, string Language, string Source)
{
    public string Stdin { get; init; } = "";

    /// <summary>The task's limits on the wire (<c>limits</c>); short and generous by default.</summary>
    public Dictionary<string, long> Limits { get; init; } = new() { ["wall_time_ms"] = 15_000, ["cpu_time_ms"] = 10_000 };

    public IReadOnlyList<object> Files { get; init; } = [];

    /// <summary>Which API key submits it; cases that watch each other use two users.</summary>
    public string User { get; init; } = HostileServer.Mallory;

    /// <summary>Submitted first and most urgent, so that pairs meant to run at the same time do.</summary>
    public bool Urgent { get; init; }

    /// <summary>Asserts the safe outcome on the settled task view.</summary>
    public required Action<JsonNode, HostileServer> Check { get; init; }

    public object Submission(HostileServer server) => new Dictionary<string, object>
    {
        ["language"] = Language,
        ["source"] = Source.Replace("{DATA}", server.DataDirectory, StringComparison.Ordinal),
        ["stdin"] = Stdin,
        ["files"] = Files,
        ["limits"] = Limits,
        ["priority"] = Urgent ? 9 : 5,
        // One attempt: a retried attempt would hide what the first did.
        ["retry"] = new { max_attempts = 1 },
        ["labels"] = new Dictionary<string, string> { ["hostile"] = Name },
    };
}

/// <summary>Reading a task view the way the cases need it.</summary>
public static class TaskViewExtensions
{
    public static string Verdict(this JsonNode view) => (string?)view["result"]?["verdict"] ?? "(no result)";

    public static string Stdout(this JsonNode view) => (string?)view["result"]?["stdout"] ?? "";

    public static string Stderr(this JsonNode view) => (string?)view["result"]?["stderr"] ?? "";

    public static string Error(this JsonNode view) => (string?)view["result"]?["error"] ?? "";

    public static List<string> ArtifactNames(this JsonNode view) =>
        view["result"]?["artifacts"]?.AsArray().Select(a => (string)a!["name"]!).ToList() ?? [];

    /// <summary>stdout as lines of "key value" the programs print, for exact checks.</summary>
    public static Dictionary<string, string> Report(this JsonNode view) =>
        view.Stdout().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', 2))
            .GroupBy(parts => parts[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Last().Length > 1 ? g.Last()[1] : "", StringComparer.Ordinal);
}
