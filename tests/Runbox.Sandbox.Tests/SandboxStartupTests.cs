using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Runbox.Sandbox.Tests;

public sealed class SandboxStartupTests : IDisposable
{
    private readonly string _state = Path.Combine(Path.GetTempPath(), "runbox-sandbox-tests", "startup-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_state))
        {
            Directory.Delete(_state, recursive: true);
        }
    }

    [Fact]
    public async Task InitializeAsync_RuntimeMissing_FailsWithClearError()
    {
        await using var sandbox = Sandbox("/nonexistent/crun");

        var error = await Assert.ThrowsAsync<SandboxException>(() => sandbox.InitializeAsync(TestContext.Current.CancellationToken));

        Assert.Contains("no OCI runtime found", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => sandbox.Languages);
    }

    [Fact]
    public async Task InitializeAsync_StateFolderInUse_FailsWithoutTouchingTheFirstInstance()
    {
        await using var first = Sandbox("crun");
        await first.InitializeAsync(TestContext.Current.CancellationToken);
        await using var second = Sandbox("crun");

        var error = await Assert.ThrowsAsync<SandboxException>(() => second.InitializeAsync(TestContext.Current.CancellationToken));

        Assert.Contains("in use", error.Message, StringComparison.Ordinal);
        var result = await first.RunAsync(SandboxFixture.Spec("bash", "echo still here"), Core.Seams.NullOutputSink.Instance, TestContext.Current.CancellationToken);
        Assert.Equal("still here\n", result.Stdout);
    }

    private OciSandbox Sandbox(string runtime) =>
        new(Options.Create(new SandboxOptions { Runtime = runtime, StateDirectory = _state }), NullLogger<OciSandbox>.Instance, TimeProvider.System);
}
