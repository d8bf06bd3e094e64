namespace Runbox.Core.Validation;

/// <summary>
/// A submission as the client sent it, before defaults and checks: every field may be missing.
/// Property names map one-to-one onto the snake_case wire names of the HTTP contract.
/// </summary>
public sealed record TaskSubmission
{
    public string? Language { get; init; }
    public string? Source { get; init; }
    public string? Stdin { get; init; }
    public IReadOnlyList<string?>? Args { get; init; }
    public IReadOnlyList<FileSubmission?>? Files { get; init; }
    public int? Priority { get; init; }
    public LimitsSubmission? Limits { get; init; }
    public RetrySubmission? Retry { get; init; }
    public IReadOnlyDictionary<string, string?>? Labels { get; init; }
}

public sealed record FileSubmission
{
    public string? Name { get; init; }
    public string? Content { get; init; }
    public string? Encoding { get; init; }
}

public sealed record LimitsSubmission
{
    public long? WallTimeMs { get; init; }
    public long? CpuTimeMs { get; init; }
    public long? MemoryMb { get; init; }
    public long? Processes { get; init; }
    public long? OutputBytes { get; init; }
    public long? DiskMb { get; init; }
}

public sealed record RetrySubmission
{
    public int? MaxAttempts { get; init; }
    public IReadOnlyList<string?>? On { get; init; }
}
