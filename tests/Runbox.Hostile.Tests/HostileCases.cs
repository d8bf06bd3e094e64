using System.Text.Json.Nodes;

namespace Runbox.Hostile.Tests;

/// <summary>
/// Every attack of the hostile suite, by theme: what a program may try against the files the service
/// reads back, the network, the host, the limits, and the other tenants. Programs print "key value" lines
/// where a case checks several things (<see cref="TaskViewExtensions.Report"/>).
/// </summary>
public static partial class HostileCases
{
    public static IReadOnlyList<HostileCase> All { get; } = [.. Artifacts(), .. Network(), .. Host(), .. Privileges(), .. Resources(), .. Tenants()];

    public static HostileCase Named(string name) => All.Single(c => c.Name == name);

    private static Dictionary<string, long> Limits(long wallMs = 15_000, long cpuMs = 10_000, long? memoryMb = null, long? processes = null, long? outputBytes = null, long? diskMb = null)
    {
        var limits = new Dictionary<string, long> { ["wall_time_ms"] = wallMs, ["cpu_time_ms"] = cpuMs };
        if (memoryMb is { } memory)
        {
            limits["memory_mb"] = memory;
        }
        if (processes is { } count)
        {
            limits["processes"] = count;
        }
        if (outputBytes is { } output)
        {
            limits["output_bytes"] = output;
        }
        if (diskMb is { } disk)
        {
            limits["disk_mb"] = disk;
        }
        return limits;
    }

    /// <summary>The verdict is one of <paramref name="verdicts"/>; the message shows the whole view when not.</summary>
    private static void Verdict(JsonNode view, params string[] verdicts) =>
        Assert.True(verdicts.Contains(view.Verdict()), $"verdict {view.Verdict()}, expected {string.Join(" or ", verdicts)}: {view}");

    /// <summary>The program printed exactly these lines; the message shows the whole view when not.</summary>
    private static void Printed(JsonNode view, string expected) =>
        Assert.True(view.Stdout() == expected, $"expected stdout:\n{expected}\ngot:\n{view.Stdout()}\nview: {view}");
}
