using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Runbox.Core.Seams;

namespace Runbox.Sandbox.Languages;

/// <summary>How to build and run one language inside the container (cwd /work).</summary>
internal sealed record Language
{
    public required LanguageInfo Info { get; init; }

    /// <summary>The compile command for a memory limit in bytes; null for interpreted languages.</summary>
    public Func<long, IReadOnlyList<string>>? Compile { get; init; }

    /// <summary>The run command for a memory limit in bytes and the user's arguments.</summary>
    public required Func<long, IReadOnlyList<string>, IReadOnlyList<string>> Run { get; init; }
}

/// <summary>
/// The languages this host can offer. A toolchain must exist and resolve under /usr, the only host tree
/// the sandbox sees; its version is read from the host once, at startup.
/// </summary>
public sealed partial class LanguageCatalog
{
    private static readonly TimeSpan VersionTimeout = TimeSpan.FromSeconds(10);

    private readonly Dictionary<string, Language> _languages;

    private LanguageCatalog(IEnumerable<Language> languages)
    {
        _languages = languages.ToDictionary(l => l.Info.Id, StringComparer.Ordinal);
        Languages = [.. _languages.Values.Select(l => l.Info).OrderBy(l => l.Id, StringComparer.Ordinal)];
    }

    public IReadOnlyList<LanguageInfo> Languages { get; }

    internal bool TryGet(string id, out Language language) => _languages.TryGetValue(id, out language!);

    public static async Task<LanguageCatalog> DetectAsync(ILogger logger, CancellationToken cancellationToken)
    {
        var probes = Candidates().Select(async candidate =>
        {
            var missing = candidate.Toolchain.FirstOrDefault(tool => !ResolvesUnderUsr(tool));
            if (missing is not null)
            {
                Log.LanguageMissing(logger, candidate.Id, missing + " is missing or outside /usr");
                return null;
            }
            var version = await candidate.Version(cancellationToken);
            if (version is null)
            {
                Log.LanguageMissing(logger, candidate.Id, "its version could not be read");
                return null;
            }
            Log.LanguageOffered(logger, candidate.Id, version);
            return new Language
            {
                Info = new LanguageInfo(candidate.Id, candidate.Name, version, candidate.SourceFile, candidate.Compile is not null),
                Compile = candidate.Compile,
                Run = candidate.Run,
            };
        });
        var found = await Task.WhenAll(probes);
        return new LanguageCatalog(found.OfType<Language>());
    }

    private static IEnumerable<Candidate> Candidates()
    {
        yield return new Candidate("python", "Python 3", "main.py", ["/usr/bin/python3"],
            ct => VersionOf(["/usr/bin/python3", "--version"], PythonVersion(), ct),
            Compile: null,
            Run: (_, args) => ["/usr/bin/python3", "main.py", .. args]);
        yield return new Candidate("c", "C (GCC)", "main.c", ["/usr/bin/gcc"],
            ct => VersionOf(["/usr/bin/gcc", "-dumpfullversion"], DottedVersion(), ct),
            Compile: _ => ["/usr/bin/gcc", "-O2", "-std=gnu17", "-o", "main", "main.c", "-lm"],
            Run: (_, args) => ["./main", .. args]);
        yield return new Candidate("cpp", "C++ (G++)", "main.cpp", ["/usr/bin/g++"],
            ct => VersionOf(["/usr/bin/g++", "-dumpfullversion"], DottedVersion(), ct),
            Compile: _ => ["/usr/bin/g++", "-O2", "-std=gnu++20", "-o", "main", "main.cpp"],
            Run: (_, args) => ["./main", .. args]);
        yield return new Candidate("javascript", "JavaScript (Node.js)", "main.js", ["/usr/bin/node"],
            ct => VersionOf(["/usr/bin/node", "--version"], DottedVersion(), ct),
            Compile: null,
            Run: (_, args) => ["/usr/bin/node", "main.js", .. args]);
        yield return new Candidate("bash", "Bash", "main.sh", ["/usr/bin/bash"],
            ct => VersionOf(["/usr/bin/bash", "-c", "echo $BASH_VERSION"], DottedVersion(), ct),
            Compile: null,
            Run: (_, args) => ["/usr/bin/bash", "main.sh", .. args]);
        yield return new Candidate("java", "Java (OpenJDK)", "Main.java", ["/usr/bin/javac", "/usr/bin/java"],
            JavaVersionAsync,
            // The JVM cannot see the container's limits (there is no /sys), so it is told them: heap sized
            // from the memory limit, one CPU, and the small serial collector. -proc:none: javac would run
            // annotation processors it finds in the task's own files, the program's code under the compile
            // step's larger limits.
            Compile: memory => ["/usr/bin/javac", .. JvmFlags(memory).Select(flag => "-J" + flag), "-J-XX:TieredStopAtLevel=1", "-proc:none", "-d", ".", "Main.java"],
            Run: (memory, args) => ["/usr/bin/java", .. JvmFlags(memory), "-cp", ".", "Main", .. args]);
    }

    private static string[] JvmFlags(long memoryBytes) =>
    [
        "-XX:MaxRAM=" + memoryBytes.ToString(CultureInfo.InvariantCulture),
        "-XX:MaxRAMPercentage=50",
        "-XX:ReservedCodeCacheSize=32m",
        "-XX:ActiveProcessorCount=1",
        "-XX:+UseSerialGC",
        "-XX:-UsePerfData",
        "-Xss8m",
    ];

    /// <summary>The JDK's release file, found through the javac symlink chain: faster than starting a JVM.</summary>
    private static async Task<string?> JavaVersionAsync(CancellationToken cancellationToken)
    {
        var javac = new FileInfo("/usr/bin/javac").ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? "/usr/bin/javac";
        var release = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(javac)!)!, "release");
        if (File.Exists(release))
        {
            var match = JavaReleaseVersion().Match(await File.ReadAllTextAsync(release, cancellationToken));
            if (match.Success)
            {
                return match.Groups[1].Value;
            }
        }
        return await VersionOf(["/usr/bin/javac", "-version"], DottedVersion(), cancellationToken);
    }

    private static bool ResolvesUnderUsr(string tool)
    {
        var info = new FileInfo(tool);
        if (!info.Exists)
        {
            return false;
        }
        var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
        return target.StartsWith("/usr/", StringComparison.Ordinal) && File.Exists(target);
    }

    private static async Task<string?> VersionOf(string[] command, Regex pattern, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info);
        if (process is null)
        {
            return null;
        }
        process.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(VersionTimeout);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            return null;
        }
        var match = pattern.Match(await stdout + "\n" + await stderr);
        return process.ExitCode == 0 && match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex(@"(\d+\.\d+(?:\.\d+)?)")]
    private static partial Regex DottedVersion();

    [GeneratedRegex(@"Python (\d+\.\d+\.\d+)")]
    private static partial Regex PythonVersion();

    [GeneratedRegex("JAVA_VERSION=\"([^\"]+)\"")]
    private static partial Regex JavaReleaseVersion();

    private sealed record Candidate(
        string Id,
        string Name,
        string SourceFile,
        string[] Toolchain,
        Func<CancellationToken, Task<string?>> Version,
        Func<long, IReadOnlyList<string>>? Compile,
        Func<long, IReadOnlyList<string>, IReadOnlyList<string>> Run);
}
