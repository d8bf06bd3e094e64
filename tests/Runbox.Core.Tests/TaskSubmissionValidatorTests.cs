using Runbox.Core.Limits;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Core.Validation;

namespace Runbox.Core.Tests;

public class TaskSubmissionValidatorTests
{
    private static readonly TaskSubmissionValidator Validator = new(
        LimitPolicy.Default,
        [new LanguageInfo("python", "Python 3", "3.11", "main.py", Compiled: false), new LanguageInfo("c", "C", "12", "main.c", Compiled: true)]);

    private static TaskSubmission Valid() => new() { Language = "python", Source = "print(input())", Stdin = "hi" };

    [Fact]
    public void Validate_MinimalSubmission_AppliesDefaults()
    {
        var result = Validator.Validate(Valid(), "alice");

        Assert.True(result.IsValid);
        var spec = result.Spec!;
        Assert.Equal("alice", spec.User);
        Assert.Equal(TaskSpec.DefaultPriority, spec.Priority);
        Assert.Equal(Limits.Limits.Default, spec.Limits);
        Assert.Equal(RetryPolicy.DefaultMaxAttempts, spec.Retry.MaxAttempts);
        Assert.Equal("hi", spec.Stdin);
    }

    [Fact]
    public void Validate_SeveralProblems_ReportsEveryOneByField()
    {
        var submission = new TaskSubmission
        {
            Language = "cobol",
            Source = "",
            Priority = 10,
            Limits = new LimitsSubmission { MemoryMb = 1_000_000, WallTimeMs = 0 },
            Files = [new FileSubmission { Name = "../x", Content = "a" }, new FileSubmission { Name = "/etc/passwd", Content = "b" }],
            Retry = new RetrySubmission { MaxAttempts = 0, On = ["compile_error", "bogus"] },
        };

        var result = Validator.Validate(submission, "alice");

        Assert.False(result.IsValid);
        Assert.Equal(
            ["files[0].name", "files[1].name", "language", "limits.memory_mb", "limits.wall_time_ms", "priority", "retry.max_attempts", "retry.on[0]", "retry.on[1]", "source"],
            result.Errors.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("'cobol' is not offered", result.Errors["language"][0], StringComparison.Ordinal);
        Assert.Contains("server's maximum", result.Errors["limits.memory_mb"][0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("/abs")]
    [InlineData("a//b")]
    [InlineData("./a")]
    [InlineData("name with space")]
    [InlineData("out/x")]
    [InlineData("")]
    public void Validate_BadFileName_IsRefused(string name)
    {
        var submission = Valid() with { Files = [new FileSubmission { Name = name, Content = "x" }] };

        var result = Validator.Validate(submission, "alice");

        Assert.True(result.Errors.ContainsKey("files[0].name"));
    }

    [Fact]
    public void Validate_DuplicateFileName_IsRefused()
    {
        var submission = Valid() with { Files = [new FileSubmission { Name = "a.py", Content = "" }, new FileSubmission { Name = "a.py", Content = "" }] };

        Assert.True(Validator.Validate(submission, "alice").Errors.ContainsKey("files[1].name"));
    }

    /// <summary>Regression: a name equal to the source file's overwrote the source, and the sandbox refused it as internal_error.</summary>
    [Fact]
    public void Validate_FileNamedLikeTheSourceFile_IsRefused()
    {
        var submission = Valid() with { Files = [new FileSubmission { Name = "main.py", Content = "x" }] };

        var errors = Validator.Validate(submission, "alice").Errors;

        Assert.Contains("source file", Assert.Single(errors["files[0].name"]), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("pkg", "pkg/util.py")]
    [InlineData("pkg/util.py", "pkg")]
    [InlineData("main.py/x", null)]
    public void Validate_FileAndFolderOfTheSameName_IsRefused(string first, string? second)
    {
        List<FileSubmission?> files = [new FileSubmission { Name = first, Content = "x" }];
        if (second is not null)
        {
            files.Add(new FileSubmission { Name = second, Content = "y" });
        }

        var errors = Validator.Validate(Valid() with { Files = files }, "alice").Errors;

        Assert.Single(errors);
        Assert.StartsWith("files[", errors.Keys.Single(), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_FilesInFolders_Accepted()
    {
        var submission = Valid() with
        {
            Files = [new FileSubmission { Name = "pkg/__init__.py", Content = "" }, new FileSubmission { Name = "pkg/util.py", Content = "X = 1" }, new FileSubmission { Name = "com/example/Util.java", Content = "" }],
        };

        var result = Validator.Validate(submission, "alice");

        Assert.True(result.IsValid, string.Join("; ", result.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
    }

    [Fact]
    public void Validate_DiskTooSmallForSourceAndFiles_IsRefused()
    {
        var submission = Valid() with
        {
            // Within the 1 MiB of source and files, but each file takes a whole page of /work's tmpfs.
            Source = new string('x', 800_000),
            Files = [.. Enumerable.Range(0, 64).Select(i => new FileSubmission { Name = $"f{i}.txt", Content = "y" })],
            Limits = new LimitsSubmission { DiskMb = 1 },
        };

        var errors = Validator.Validate(submission, "alice").Errors;

        Assert.Equal(["limits.disk_mb"], errors.Keys);
    }

    /// <summary>Regression: the argument count was checked against the default maximum, whatever the server's policy said.</summary>
    [Fact]
    public void Validate_MoreArgsThanThePolicyAllows_IsRefusedAtThePolicysMaximum()
    {
        var strict = new TaskSubmissionValidator(LimitPolicy.Default with { MaxArgs = 2 }, [new LanguageInfo("python", "Python 3", "3.11", "main.py", Compiled: false)]);

        Assert.True(strict.Validate(Valid() with { Args = ["a", "b"] }, "alice").IsValid);
        Assert.Equal(["at most 2 arguments are allowed."], strict.Validate(Valid() with { Args = ["a", "b", "c"] }, "alice").Errors["args"]);
    }

    [Fact]
    public void Validate_BadBase64_IsRefused()
    {
        var submission = Valid() with { Files = [new FileSubmission { Name = "data.bin", Content = "not base64!", Encoding = "base64" }] };

        Assert.Equal(["files[0].content"], Validator.Validate(submission, "alice").Errors.Keys);
    }

    [Fact]
    public void Validate_GoodBase64_DecodesToBytes()
    {
        var submission = Valid() with { Files = [new FileSubmission { Name = "sub/data.bin", Content = Convert.ToBase64String([1, 2, 3]), Encoding = "base64" }] };

        var spec = Validator.Validate(submission, "alice").Spec!;

        Assert.Equal([1, 2, 3], spec.Files.Single().Decode());
    }

    [Fact]
    public void Validate_UnknownEncoding_IsRefused()
    {
        var submission = Valid() with { Files = [new FileSubmission { Name = "a", Content = "", Encoding = "utf16" }] };

        Assert.Equal(["files[0].encoding"], Validator.Validate(submission, "alice").Errors.Keys);
    }

    [Fact]
    public void Validate_SourceTooLarge_IsRefused()
    {
        var submission = Valid() with { Source = new string('x', (int)LimitPolicy.DefaultMaxSourceBytes + 1) };

        Assert.Equal(["source"], Validator.Validate(submission, "alice").Errors.Keys);
    }

    [Fact]
    public void Validate_FilesPushSourceOverLimit_IsRefused()
    {
        var half = new string('x', (int)(LimitPolicy.DefaultMaxSourceBytes / 2) + 1);
        var submission = Valid() with { Source = half, Files = [new FileSubmission { Name = "b.py", Content = half }] };

        Assert.Equal(["source"], Validator.Validate(submission, "alice").Errors.Keys);
    }

    [Fact]
    public void Validate_StdinTooLarge_IsRefused()
    {
        var submission = Valid() with { Stdin = new string('x', (int)LimitPolicy.DefaultMaxStdinBytes + 1) };

        Assert.Equal(["stdin"], Validator.Validate(submission, "alice").Errors.Keys);
    }

    [Fact]
    public void Validate_LimitsWithinMaxima_AreKept()
    {
        var submission = Valid() with { Limits = new LimitsSubmission { WallTimeMs = 1500, MemoryMb = 64, Processes = 8, OutputBytes = 100 } };

        var limits = Validator.Validate(submission, "alice").Spec!.Limits;

        Assert.Equal(TimeSpan.FromMilliseconds(1500), limits.WallTime);
        Assert.Equal(64L * 1024 * 1024, limits.MemoryBytes);
        Assert.Equal(8, limits.Processes);
        Assert.Equal(100, limits.OutputBytes);
        Assert.Equal(Limits.Limits.Default.CpuTime, limits.CpuTime);
    }

    [Fact]
    public void Validate_RetryOn_ReplacesDefaultKinds()
    {
        var submission = Valid() with { Retry = new RetrySubmission { MaxAttempts = 5, On = ["runtime_error"] } };

        var retry = Validator.Validate(submission, "alice").Spec!.Retry;

        Assert.Equal(5, retry.MaxAttempts);
        Assert.Equal([FailureKind.RuntimeError], retry.On);
    }

    [Fact]
    public void Validate_NullEntries_AreFieldErrorsNotCrashes()
    {
        var submission = Valid() with { Args = ["ok", null], Files = [null], Labels = new Dictionary<string, string?> { ["k"] = null } };

        var errors = Validator.Validate(submission, "alice").Errors;

        Assert.Equal(["args[1]", "files[0]", "labels.k"], errors.Keys.Order(StringComparer.Ordinal));
    }
}
