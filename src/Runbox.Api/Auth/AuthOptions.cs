using System.ComponentModel.DataAnnotations;

namespace Runbox.Api.Auth;

/// <summary>API keys. Section <c>Runbox:Auth</c>; with no keys, auth is off (local mode).</summary>
public sealed class AuthOptions
{
    public const string Section = "Runbox:Auth";

    public List<ApiKey> Keys { get; set; } = [];

    public bool LocalMode => Keys.Count == 0;
}

public sealed class ApiKey
{
    [Required, MinLength(16)]
    public string Key { get; set; } = "";

    [Required, RegularExpression("^[A-Za-z0-9_.@-]{1,64}$")]
    public string User { get; set; } = "";

    /// <summary>Running tasks at once; null takes <see cref="UsersOptions.DefaultConcurrency"/>.</summary>
    [Range(1, 100_000)]
    public int? Concurrency { get; set; }

    public bool Admin { get; set; }
}

/// <summary>Section <c>Runbox:Users</c>.</summary>
public sealed class UsersOptions
{
    public const string Section = "Runbox:Users";
    public const int DefaultDefaultConcurrency = 4;

    [Range(1, 100_000)]
    public int DefaultConcurrency { get; set; } = DefaultDefaultConcurrency;

    /// <summary>
    /// How often the API sets every user's limit in the queue again: Redis holds the limits only, and
    /// after it lost them users run under the queue's default until the next refresh.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan LimitRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);
}
