using System.Text;
using Runbox.Core.Limits;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Core.Validation;

/// <summary>
/// Turns a submission into a <see cref="TaskSpec"/>, applying the server's defaults, or reports every
/// problem at once keyed by the wire field name (<c>limits.memory_mb</c>, <c>files[2].name</c>).
/// Nothing that fails here may reach the store.
/// </summary>
public sealed class TaskSubmissionValidator(LimitPolicy policy, IEnumerable<LanguageInfo> languages)
{
    private const long PageBytes = 4096;
    private const int MaxLabelKeyLength = 64;
    private const int MaxLabelValueLength = 256;
    private const int MaxArgLength = 4096;

    private readonly Dictionary<string, LanguageInfo> _languages = languages.ToDictionary(l => l.Id, StringComparer.Ordinal);

    public ValidationResult Validate(TaskSubmission submission, string user, RetryPolicy? retryDefaults = null)
    {
        ArgumentNullException.ThrowIfNull(submission);
        var errors = new ValidationErrors();
        var defaults = retryDefaults ?? RetryPolicy.Default;

        if (string.IsNullOrWhiteSpace(submission.Language))
        {
            errors.Add("language", "is required.");
        }
        else if (!_languages.ContainsKey(submission.Language))
        {
            errors.Add("language", $"'{Shorten(submission.Language)}' is not offered here; see GET /v1/languages ({string.Join(", ", _languages.Keys.Order(StringComparer.Ordinal))}).");
        }

        var source = submission.Source ?? "";
        if (string.IsNullOrWhiteSpace(source))
        {
            errors.Add("source", "is required and must not be empty.");
        }

        var stdin = submission.Stdin ?? "";
        if (Encoding.UTF8.GetByteCount(stdin) > policy.MaxStdinBytes)
        {
            errors.Add("stdin", $"is larger than the maximum of {policy.MaxStdinBytes} bytes.");
        }

        var priority = submission.Priority ?? TaskSpec.DefaultPriority;
        if (priority is < TaskSpec.MinPriority or > TaskSpec.MaxPriority)
        {
            errors.Add("priority", $"must be between {TaskSpec.MinPriority} and {TaskSpec.MaxPriority}.");
        }

        var sourceFile = submission.Language is not null && _languages.TryGetValue(submission.Language, out var language) ? language.SourceFile : null;
        var files = ValidateFiles(submission.Files, sourceFile, errors, out var filesBytes, out var filesDiskBytes);
        if (Encoding.UTF8.GetByteCount(source) + filesBytes > policy.MaxSourceBytes)
        {
            errors.Add("source", $"source and files together are larger than the maximum of {policy.MaxSourceBytes} bytes.");
        }

        var args = ValidateArgs(submission.Args, errors);
        var limits = ValidateLimits(submission.Limits, errors);
        var needed = OnDisk(Encoding.UTF8.GetByteCount(source)) + filesDiskBytes;
        if (!errors.Has("limits.disk_mb") && needed > limits.DiskBytes)
        {
            errors.Add("limits.disk_mb", $"is too small for the source and files, which take {needed} bytes of /work.");
        }
        var retry = ValidateRetry(submission.Retry, defaults, errors);
        var labels = ValidateLabels(submission.Labels, errors);

        if (errors.Count > 0)
        {
            return new ValidationResult(null, errors.ToDictionary());
        }

        var spec = new TaskSpec
        {
            User = user,
            Language = submission.Language!,
            Source = source,
            Stdin = stdin,
            Args = args,
            Files = files,
            Priority = priority,
            Limits = limits,
            Retry = retry,
            Labels = labels,
        };
        return new ValidationResult(spec, new Dictionary<string, string[]>());
    }

    private List<TaskFile> ValidateFiles(IReadOnlyList<FileSubmission?>? submitted, string? sourceFile, ValidationErrors errors, out long totalBytes, out long diskBytes)
    {
        totalBytes = 0;
        diskBytes = 0;
        var files = new List<TaskFile>();
        if (submitted is null)
        {
            return files;
        }
        if (submitted.Count > policy.MaxFiles)
        {
            errors.Add("files", $"at most {policy.MaxFiles} files are allowed.");
            return files;
        }

        var badNames = false;
        for (var i = 0; i < submitted.Count; i++)
        {
            var field = $"files[{i}]";
            var file = submitted[i];
            if (file is null)
            {
                errors.Add(field, "must be an object with name and content.");
                continue;
            }

            var nameProblem = TaskFileNames.Check(file.Name);
            if (nameProblem is not null)
            {
                errors.Add($"{field}.name", nameProblem);
                badNames = true;
            }

            FileEncoding encoding;
            switch (file.Encoding)
            {
                case null or "utf8":
                    encoding = FileEncoding.Utf8;
                    break;
                case "base64":
                    encoding = FileEncoding.Base64;
                    break;
                default:
                    errors.Add($"{field}.encoding", "must be 'utf8' or 'base64'.");
                    continue;
            }

            var content = file.Content ?? "";
            if (encoding == FileEncoding.Base64)
            {
                var buffer = new byte[(content.Length * 3 / 4) + 3];
                if (!Convert.TryFromBase64String(content, buffer, out var written))
                {
                    errors.Add($"{field}.content", "is not valid base64.");
                    continue;
                }
                totalBytes += written;
                diskBytes += OnDisk(written);
            }
            else
            {
                var bytes = Encoding.UTF8.GetByteCount(content);
                totalBytes += bytes;
                diskBytes += OnDisk(bytes);
            }

            if (nameProblem is null)
            {
                files.Add(new TaskFile(file.Name!, content, encoding));
            }
        }
        // Each name is fine alone; together (with the source file, when the language is known) they must fit in one /work.
        if (!badNames && files.Count == submitted.Count
            && TaskFileNames.Check([sourceFile ?? "", .. files.Select(f => f.Name)]) is { Index: > 0 } clash)
        {
            errors.Add($"files[{clash.Index - 1}].name", clash.Message);
        }
        return files;
    }

    private List<string> ValidateArgs(IReadOnlyList<string?>? submitted, ValidationErrors errors)
    {
        var args = new List<string>();
        if (submitted is null)
        {
            return args;
        }
        if (submitted.Count > policy.MaxArgs)
        {
            errors.Add("args", $"at most {policy.MaxArgs} arguments are allowed.");
            return args;
        }
        for (var i = 0; i < submitted.Count; i++)
        {
            var arg = submitted[i];
            if (arg is null)
            {
                errors.Add($"args[{i}]", "must be a string.");
            }
            else if (arg.Length > MaxArgLength || arg.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"args[{i}]", $"must be at most {MaxArgLength} characters and contain no NUL.");
            }
            else
            {
                args.Add(arg);
            }
        }
        return args;
    }

    private Limits.Limits ValidateLimits(LimitsSubmission? submitted, ValidationErrors errors)
    {
        var defaults = policy.Defaults;
        var max = policy.Maxima;
        if (submitted is null)
        {
            return defaults;
        }

        long Check(string field, long? value, long fallback, long maximum, long minimum = 1)
        {
            if (value is null)
            {
                return fallback;
            }
            if (value < minimum)
            {
                errors.Add($"limits.{field}", $"must be at least {minimum}.");
            }
            else if (value > maximum)
            {
                errors.Add($"limits.{field}", $"must be at most {maximum} (the server's maximum).");
            }
            return value.Value;
        }

        const long Mb = 1024 * 1024;
        return new Limits.Limits
        {
            WallTime = TimeSpan.FromMilliseconds(Check("wall_time_ms", submitted.WallTimeMs, (long)defaults.WallTime.TotalMilliseconds, (long)max.WallTime.TotalMilliseconds, minimum: 10)),
            CpuTime = TimeSpan.FromMilliseconds(Check("cpu_time_ms", submitted.CpuTimeMs, (long)defaults.CpuTime.TotalMilliseconds, (long)max.CpuTime.TotalMilliseconds, minimum: 10)),
            MemoryBytes = Check("memory_mb", submitted.MemoryMb, defaults.MemoryMb, max.MemoryMb, minimum: 8) * Mb,
            Processes = (int)Check("processes", submitted.Processes, defaults.Processes, max.Processes),
            OutputBytes = Check("output_bytes", submitted.OutputBytes, defaults.OutputBytes, max.OutputBytes),
            DiskBytes = Check("disk_mb", submitted.DiskMb, defaults.DiskBytes / Mb, max.DiskBytes / Mb) * Mb,
        };
    }

    private static RetryPolicy ValidateRetry(RetrySubmission? submitted, RetryPolicy defaults, ValidationErrors errors)
    {
        if (submitted is null)
        {
            return defaults;
        }

        var maxAttempts = submitted.MaxAttempts ?? defaults.MaxAttempts;
        if (maxAttempts is < 1 or > RetryPolicy.MaxAllowedAttempts)
        {
            errors.Add("retry.max_attempts", $"must be between 1 and {RetryPolicy.MaxAllowedAttempts}.");
        }

        var on = defaults.On;
        if (submitted.On is not null)
        {
            var kinds = new HashSet<FailureKind>();
            for (var i = 0; i < submitted.On.Count; i++)
            {
                if (!FailureKindNames.TryParse(submitted.On[i], out var kind))
                {
                    errors.Add($"retry.on[{i}]", "must be one of infrastructure, timeout, runtime_error, memory_limit, output_limit.");
                }
                else if (kind == FailureKind.CompileError)
                {
                    errors.Add($"retry.on[{i}]", "compile_error is never retried: the same source fails the same way.");
                }
                else
                {
                    kinds.Add(kind);
                }
            }
            on = kinds;
        }
        return defaults with { MaxAttempts = maxAttempts, On = on };
    }

    private Dictionary<string, string> ValidateLabels(IReadOnlyDictionary<string, string?>? submitted, ValidationErrors errors)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (submitted is null)
        {
            return labels;
        }
        if (submitted.Count > policy.MaxLabels)
        {
            errors.Add("labels", $"at most {policy.MaxLabels} labels are allowed.");
            return labels;
        }
        foreach (var (key, value) in submitted)
        {
            if (key.Length is 0 or > MaxLabelKeyLength)
            {
                errors.Add("labels", $"keys must be 1 to {MaxLabelKeyLength} characters.");
            }
            else if (value is null || value.Length > MaxLabelValueLength)
            {
                errors.Add($"labels.{key}", $"must be a string of at most {MaxLabelValueLength} characters.");
            }
            else
            {
                labels[key] = value;
            }
        }
        return labels;
    }

    /// <summary>What a file takes of /work's tmpfs, which counts whole pages.</summary>
    private static long OnDisk(long bytes) => (bytes + PageBytes - 1) / PageBytes * PageBytes;

    private static string Shorten(string text) => text.Length <= 32 ? text : text[..32] + "…";

    private sealed class ValidationErrors
    {
        private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

        public int Count => _errors.Count;

        public bool Has(string field) => _errors.ContainsKey(field);

        public void Add(string field, string message)
        {
            if (!_errors.TryGetValue(field, out var list))
            {
                _errors[field] = list = [];
            }
            list.Add(message);
        }

        public Dictionary<string, string[]> ToDictionary() => _errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
    }
}

/// <summary>Either a spec (no errors) or every problem found, by wire field name.</summary>
public sealed record ValidationResult(TaskSpec? Spec, IReadOnlyDictionary<string, string[]> Errors)
{
    public bool IsValid => Spec is not null;
}
