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
}
