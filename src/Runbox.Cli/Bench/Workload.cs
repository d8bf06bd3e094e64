using System.Text.Json.Nodes;

namespace Runbox.Cli.Bench;

/// <summary>One kind of task the load generator submits, and the outcome it must reach.</summary>
public sealed record WorkloadKind(string Name, string Language, string Source, string ExpectedStatus, string ExpectedVerdict, string? ExpectedStdout = null, JsonObject? Limits = null)
{
    public JsonObject ToRequest(int priority) => new()
    {
        ["language"] = Language,
        ["source"] = Source,
        ["priority"] = priority,
        ["limits"] = Limits?.DeepClone() ?? new JsonObject(),
        // Every attempt is a measurement: no automatic retries muddle the counts.
        ["retry"] = new JsonObject { ["max_attempts"] = 1 },
        ["labels"] = new JsonObject { ["bench"] = Name },
    };
}

public static class Workloads
{
    public static readonly WorkloadKind HelloPython = new("hello-python", "python", "print('hello')", "completed", "ok", "hello\n");
    public static readonly WorkloadKind HelloBash = new("hello-bash", "bash", "echo hello", "completed", "ok", "hello\n");
    public static readonly WorkloadKind HelloJavascript = new("hello-javascript", "javascript", "console.log('hello')", "completed", "ok", "hello\n");
    public static readonly WorkloadKind HelloC = new("hello-c", "c", "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}", "completed", "ok", "hello\n");
    public static readonly WorkloadKind Sleep = new("sleep", "bash", "sleep 1", "completed", "ok", "", new JsonObject { ["wall_time_ms"] = 10_000 });
    public static readonly WorkloadKind CpuBurn = new("cpu", "python", "x = 0\nfor i in range(3_000_000):\n    x += i\nprint('burnt')", "completed", "ok", "burnt\n", new JsonObject { ["wall_time_ms"] = 20_000 });
    public static readonly WorkloadKind MemoryHog = new("memory-hog", "python", "blocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))", "failed", "memory_limit", null, new JsonObject { ["memory_mb"] = 64 });
    public static readonly WorkloadKind OutputFlood = new("output-flood", "bash", "yes flood", "failed", "output_limit", null, new JsonObject { ["output_bytes"] = 65_536 });
    public static readonly WorkloadKind Spin = new("spin", "python", "while True: pass", "timeout", "time_limit", null, new JsonObject { ["wall_time_ms"] = 500 });

    /// <summary>Named mixes: each is a weighted list the generator cycles through.</summary>
    public static IReadOnlyList<WorkloadKind> Mix(string name) => name switch
    {
        "hello" => [HelloPython],
        "hello-mixed" => [HelloPython, HelloBash, HelloJavascript, HelloC],
        "sleep" => [Sleep],
        "cpu" => [CpuBurn],
        "mixed" => [HelloPython, HelloBash, HelloJavascript, HelloC, HelloPython, Sleep, CpuBurn, MemoryHog, OutputFlood, Spin],
        _ => throw new UsageException($"Unknown mix '{name}': hello, hello-mixed, sleep, cpu, mixed."),
    };
}
