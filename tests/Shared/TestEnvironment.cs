namespace Runbox.Tests.Shared;

/// <summary>The real servers scripts/test starts; a missing one fails the test with a clear message.</summary>
public static class TestEnvironment
{
    public static string Redis => Require("RUNBOX_TEST_REDIS");

    public static string Postgres => Require("RUNBOX_TEST_POSTGRES");

    private static string Require(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set: run the tests through scripts/test, which starts the servers they need.");

    /// <summary>A fresh temporary folder for one server's data.</summary>
    public static string NewDataDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "runbox-e2e", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Environment for a server on the shared test Redis under its own key prefix, so tests run side by side.</summary>
    public static Dictionary<string, string> SharedRedis(string prefix, Dictionary<string, string>? more = null)
    {
        var env = new Dictionary<string, string>
        {
            ["Runbox__Redis"] = Redis,
            ["Runbox__Queue__KeyPrefix"] = prefix,
            ["Runbox__Worker__ReapInterval"] = "00:00:01",
            // A killed leader's maintenance passes to a survivor within this (the default is 10 s).
            ["Runbox__Worker__MaintenanceTerm"] = "00:00:03",
        };
        foreach (var (key, value) in more ?? [])
        {
            env[key] = value;
        }
        return env;
    }
}
