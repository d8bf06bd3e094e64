using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Runbox.Sandbox.Runtime;

namespace Runbox.Sandbox.Tests;

public sealed class OciRuntimeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("runbox-runtime-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A runtime command that never returns (a hung crun) was awaited without bound and held its slot for ever.</summary>
    [Fact]
    public async Task List_RuntimeHangs_FailsWithinTheTimeoutAndTheRuntimeIsKilled()
    {
        var marker = Path.Combine(_folder, "pid");
        var hanging = Path.Combine(_folder, "crun");
        await File.WriteAllTextAsync(hanging, $"#!/bin/sh\necho $$ > {marker}\nexec sleep 300\n", TestContext.Current.CancellationToken);
        File.SetUnixFileMode(hanging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var runtime = new OciRuntime("crun", hanging, _folder, NullLogger.Instance, commandTimeout: TimeSpan.FromSeconds(1));

        var failure = await Assert.ThrowsAsync<SandboxException>(runtime.ListAsync).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Contains("did not finish", failure.Message, StringComparison.Ordinal);
        var pid = int.Parse(await File.ReadAllTextAsync(marker, TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Throws<ArgumentException>(() => Process.GetProcessById(pid));
    }
}
