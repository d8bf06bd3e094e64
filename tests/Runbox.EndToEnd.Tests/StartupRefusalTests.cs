using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>
/// A host or a setting the server cannot work with stops it at start with one line on stderr that says what
/// is wrong and how to fix it, exit code 78 (EX_CONFIG, which the systemd unit does not restart on), and no
/// stack trace. Each host condition is made real: another user, a mount namespace whose /sys/fs/cgroup is
/// empty or a cgroup v2 hierarchy without controllers.
/// </summary>
public sealed class StartupRefusalTests
{
    private const int Refused = 78;

    [Fact]
    public async Task Serve_NotRoot_Refused()
    {
        var outcome = await RunAsync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);

        AssertRefusedWith(outcome, "the sandbox must run as root");
    }

    [Fact]
    public async Task Serve_NoCgroupHierarchy_Refused()
    {
        var outcome = await RunAsync(InMountNamespace("mount -t tmpfs none /sys/fs/cgroup"));

        AssertRefusedWith(outcome, "no usable cgroup hierarchy at /sys/fs/cgroup");
    }

    /// <summary>On this hybrid host the v2 hierarchy carries no controller (scripts/host-setup moved them to v1): a real v2 tree that delegates none.</summary>
    [Fact]
    public async Task Serve_CgroupV2WithoutControllers_RefusedAsNotDelegated()
    {
        var outcome = await RunAsync(InMountNamespace("mount -t cgroup2 none /sys/fs/cgroup"));

        AssertRefusedWith(outcome, "memory, pids controllers are not delegated to this service's cgroup");
        Assert.Contains("Delegate=yes", outcome.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_NoOciRuntime_Refused()
    {
        var outcome = await RunAsync(environment: new() { ["Runbox__Sandbox__Runtime"] = "/nonexistent/crun" });

        AssertRefusedWith(outcome, "no OCI runtime found for '/nonexistent/crun' (install crun or runc");
    }

    [Fact]
    public async Task Serve_ApiKeyShorterThanTheMinimum_Refused()
    {
        var outcome = await RunAsync(environment: new() { ["Runbox__Auth__Keys__0__Key"] = "short", ["Runbox__Auth__Keys__0__User"] = "alice" });

        AssertRefusedWith(outcome, "Every Runbox:Auth:Keys entry needs a Key of 16+ characters and a User.");
    }

    private static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IReadOnlyList<string>? wrapper = null, Dictionary<string, string>? environment = null) =>
        RunboxProcess.RunToExitAsync("serve", TestEnvironment.NewDataDirectory(), environment ?? [], wrapper);

    /// <summary>Runs the program in a mount namespace of its own after <paramref name="setup"/>: the host's mounts stay as they are.</summary>
    private static string[] InMountNamespace(string setup) =>
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", setup + " && exec \"$@\"", "sh"];

    private static void AssertRefusedWith((int ExitCode, string Stdout, string Stderr) outcome, string reason)
    {
        var output = outcome.Stdout + outcome.Stderr;
        Assert.True(outcome.ExitCode == Refused, $"exit code {outcome.ExitCode}, expected {Refused}:\n{output}");
        var line = Assert.Single(outcome.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("runbox: cannot start: ", line, StringComparison.Ordinal);
        Assert.Contains(reason, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }
}
