using Runbox.Sandbox.Execution;

namespace Runbox.Sandbox.Tests;

public sealed class RunDirectoryTests
{
    /// <summary>
    /// A run that ends while the cleaner removes the leftovers of its crashed instance: both remove the
    /// same folder at once, and neither may fail because the other took part of it first.
    /// </summary>
    [Fact]
    public async Task Remove_SameFolderFromSeveralThreadsAtOnce_AllSucceed()
    {
        var root = Directory.CreateTempSubdirectory("runbox-rundir-").FullName;
        try
        {
            for (var round = 0; round < 20; round++)
            {
                var run = Path.Combine(root, $"run-{round}");
                for (var i = 0; i < 50; i++)
                {
                    var folder = Directory.CreateDirectory(Path.Combine(run, "work", $"d{i}", "inner")).FullName;
                    await File.WriteAllTextAsync(Path.Combine(folder, "f"), "x", TestContext.Current.CancellationToken);
                }

                using var start = new Barrier(4);
                await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
                {
                    start.SignalAndWait(TestContext.Current.CancellationToken);
                    RunDirectory.Remove(run);
                }, TestContext.Current.CancellationToken)));

                Assert.False(Directory.Exists(run));
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>A link in a run folder (as a program's /work could hold, were it still mounted) is removed as a link, never followed.</summary>
    [Fact]
    public async Task Remove_FolderWithLinksToElsewhere_RemovesTheLinksNotTheirTargets()
    {
        var root = Directory.CreateTempSubdirectory("runbox-rundir-").FullName;
        try
        {
            var precious = Directory.CreateDirectory(Path.Combine(root, "precious")).FullName;
            await File.WriteAllTextAsync(Path.Combine(precious, "keep.txt"), "keep", TestContext.Current.CancellationToken);
            var run = Directory.CreateDirectory(Path.Combine(root, "run", "bundle")).FullName;
            File.CreateSymbolicLink(Path.Combine(run, "to-folder"), precious);
            File.CreateSymbolicLink(Path.Combine(run, "to-file"), Path.Combine(precious, "keep.txt"));

            RunDirectory.Remove(Path.Combine(root, "run"));

            Assert.False(Directory.Exists(Path.Combine(root, "run")));
            Assert.Equal("keep", await File.ReadAllTextAsync(Path.Combine(precious, "keep.txt"), TestContext.Current.CancellationToken));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>A mount left inside a run folder is not emptied: what is mounted there is not the run's to delete.</summary>
    [Fact]
    public async Task Remove_FolderWithAMountInside_RefusesAndLeavesTheMountedFilesAlone()
    {
        var root = Directory.CreateTempSubdirectory("runbox-rundir-").FullName;
        var elsewhere = Directory.CreateTempSubdirectory("runbox-mounted-").FullName;
        var inside = Directory.CreateDirectory(Path.Combine(root, "run", "bundle", "mnt")).FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(elsewhere, "keep.txt"), "keep", TestContext.Current.CancellationToken);
            Mount("--bind", elsewhere, inside);

            Assert.ThrowsAny<IOException>(() => RunDirectory.Remove(Path.Combine(root, "run")));

            Assert.True(File.Exists(Path.Combine(elsewhere, "keep.txt")));
        }
        finally
        {
            Mount("-l", inside);
            Directory.Delete(root, recursive: true);
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    private static void Mount(params string[] args)
    {
        var unmount = args[0] == "-l";
        using var process = System.Diagnostics.Process.Start(unmount ? "umount" : "mount", args)!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
