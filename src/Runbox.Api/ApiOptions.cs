using System.ComponentModel.DataAnnotations;

namespace Runbox.Api;

/// <summary>Section <c>Runbox:Api</c>.</summary>
public sealed class ApiOptions
{
    public const string Section = "Runbox:Api";

    /// <summary>The longest a <c>?wait=true</c> submit holds the request before answering 202 with the task as it is.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Request bodies above this are refused with 413 before they are read.</summary>
    [Range(1024, 256L * 1024 * 1024)]
    public long MaxBodyBytes { get; set; } = 8L * 1024 * 1024;
}
