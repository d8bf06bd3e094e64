using Runbox.Core.Retry;

namespace Runbox.Core.Tasks;

/// <summary>Everything a client asked for: what to run, with which input and limits, and how to retry.</summary>
public sealed record TaskSpec
{
    public const int MinPriority = 0;
    public const int MaxPriority = 9;
    public const int DefaultPriority = 5;

    public required string User { get; init; }
    public required string Language { get; init; }
    public required string Source { get; init; }
    public IReadOnlyList<TaskFile> Files { get; init; } = [];
    public string Stdin { get; init; } = "";
    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>0–9, 9 most urgent.</summary>
    public int Priority { get; init; } = DefaultPriority;

    public Limits.Limits Limits { get; init; } = Core.Limits.Limits.Default;
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}

public enum FileEncoding
{
    Utf8,
    Base64,
}

/// <summary>An extra file placed next to the source in /work.</summary>
public sealed record TaskFile(string Name, string Content, FileEncoding Encoding = FileEncoding.Utf8)
{
    /// <summary>The file's bytes. Call only on a validated spec: bad base64 throws.</summary>
    public byte[] Decode() => Encoding == FileEncoding.Base64
        ? Convert.FromBase64String(Content)
        : System.Text.Encoding.UTF8.GetBytes(Content);
}
