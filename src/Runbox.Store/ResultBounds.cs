using System.Text;
using Runbox.Core.Execution;
using Runbox.Core.Seams;

namespace Runbox.Store;

/// <summary>
/// Cuts a result down to what the store keeps. The sandbox already caps output, but the store is
/// the last line: a misconfigured worker must not be able to fill the database, and a result is
/// worth more stored with a clear note than refused.
/// </summary>
internal static class ResultBounds
{
    public static (ExecutionResult Result, int DroppedArtifacts) Apply(ExecutionResult result, StoreOptions options)
    {
        var (stdout, stdoutCut) = Cut(result.Stdout, options.MaxOutputBytes);
        var (stderr, stderrCut) = Cut(result.Stderr, options.MaxOutputBytes);
        var compile = result.Compile;
        if (compile is not null)
        {
            var (output, outputCut) = Cut(compile.Output, options.MaxOutputBytes);
            compile = compile with { Output = output, OutputTruncated = compile.OutputTruncated || outputCut };
        }

        var kept = new List<Artifact>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        long totalBytes = 0;
        foreach (var artifact in result.Artifacts)
        {
            if (kept.Count < options.MaxArtifactCount
                && totalBytes + artifact.SizeBytes <= options.MaxArtifactBytes
                && names.Add(artifact.Name))
            {
                kept.Add(artifact);
                totalBytes += artifact.SizeBytes;
            }
        }

        var dropped = result.Artifacts.Count - kept.Count;
        var error = result.Error;
        if (dropped > 0)
        {
            var note = $"Artifacts truncated: kept {kept.Count} of {result.Artifacts.Count}; the store keeps at most "
                + $"{options.MaxArtifactCount} files and {options.MaxArtifactBytes} bytes per attempt, and one file per name.";
            error = error is null ? note : $"{error} {note}";
        }

        var bounded = result with
        {
            Stdout = stdout,
            Stderr = stderr,
            StdoutTruncated = result.StdoutTruncated || stdoutCut,
            StderrTruncated = result.StderrTruncated || stderrCut,
            Compile = compile,
            Artifacts = kept,
            Error = error,
        };
        return (bounded, dropped);
    }

    /// <summary>
    /// The result as a listing shows it: stdout, stderr and compiler output cut to their first
    /// <see cref="TaskPage.PreviewBytes"/>. The truncation flags say what the program's limits cut,
    /// so a preview leaves them as they are.
    /// </summary>
    public static ExecutionResult Preview(ExecutionResult result) => result with
    {
        Stdout = Cut(result.Stdout, TaskPage.PreviewBytes).Text,
        Stderr = Cut(result.Stderr, TaskPage.PreviewBytes).Text,
        Compile = result.Compile is null ? null : result.Compile with { Output = Cut(result.Compile.Output, TaskPage.PreviewBytes).Text },
    };

    /// <summary>Cuts <paramref name="text"/> to at most <paramref name="maxBytes"/> UTF-8 bytes, never inside a character.</summary>
    internal static (string Text, bool Truncated) Cut(string text, int maxBytes)
    {
        if (Encoding.UTF8.GetMaxByteCount(text.Length) <= maxBytes)
        {
            return (text, false);
        }
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length <= maxBytes)
        {
            return (text, false);
        }
        var end = maxBytes;
        // A byte of the form 10xxxxxx continues a character begun earlier: back off to its start.
        while (end > 0 && (bytes[end] & 0xC0) == 0x80)
        {
            end--;
        }
        return (Encoding.UTF8.GetString(bytes, 0, end), true);
    }
}
