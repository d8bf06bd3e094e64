using Runbox.Sandbox.Execution;

namespace Runbox.Sandbox.Tests;

/// <summary>
/// The watcher against the real inotify. The launches would still notice a pid file without it (they look
/// again every 100 ms), only slower, so these tests are what catches a watcher that no longer signals.
/// </summary>
public sealed class PidFileWatcherTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly string _folder = Directory.CreateTempSubdirectory("runbox-pidfile-").FullName;
    private readonly PidFileWatcher _watcher = new();

    public void Dispose()
    {
        _watcher.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Start_PidFileWrittenInPlace_Signals()
    {
        using var watch = _watcher.Start(_folder);

        // crun opens, writes and closes the file.
        await File.WriteAllTextAsync(Path.Combine(_folder, "pid"), "4242", TestContext.Current.CancellationToken);

        await watch.Written.WaitAsync(Patience, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Start_PidFileRenamedIntoPlace_Signals()
    {
        using var watch = _watcher.Start(_folder);

        // runc writes ".pid" and renames it.
        await File.WriteAllTextAsync(Path.Combine(_folder, ".pid"), "4242", TestContext.Current.CancellationToken);
        File.Move(Path.Combine(_folder, ".pid"), Path.Combine(_folder, "pid"));

        await watch.Written.WaitAsync(Patience, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Start_OtherFilesWritten_DoesNotSignal()
    {
        using var watch = _watcher.Start(_folder);
        using var control = _watcher.Start(Directory.CreateDirectory(Path.Combine(_folder, "other")).FullName);

        await File.WriteAllTextAsync(Path.Combine(_folder, "runtime.log"), "", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(_folder, "other", "pid"), "1", TestContext.Current.CancellationToken);
        // The other folder's pid file is seen, so the log file's event has been read by then too.
        await control.Written.WaitAsync(Patience, TestContext.Current.CancellationToken);

        Assert.False(watch.Written.IsCompleted);
    }
}
