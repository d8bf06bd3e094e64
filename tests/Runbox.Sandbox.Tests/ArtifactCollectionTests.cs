using System.Diagnostics;
using System.Text;
using Runbox.Sandbox.Execution;

namespace Runbox.Sandbox.Tests;

/// <summary>
/// /work/out as a hostile program leaves it, read back by the service as root. Each test plants what a
/// program could (and, as root, what seccomp and the mount flags keep a program from making: FIFOs,
/// device nodes, mounts), then collects the artifacts the way a run does: after /work left the host's
/// mount table. Nothing outside the run's tmpfs may come back, and nothing may block or throw.
/// </summary>
public sealed class ArtifactCollectionTests : IDisposable
{
    private const int MaxCount = 16;
    private const long MaxBytes = 1 << 20;
    private static readonly TimeSpan NoBlock = TimeSpan.FromSeconds(20);

    private readonly string _runs = Directory.CreateTempSubdirectory("runbox-artifacts-").FullName;
    private readonly RunDirectory _run;

    public ArtifactCollectionTests()
    {
        _run = RunDirectory.Create(_runs, "run", uid: 1000, diskBytes: 16L << 20);
    }

    private string Out => Path.Combine(_run.WorkPath, "out");

    [Theory]
    [InlineData("/proc/self")]
    [InlineData("/etc")]
    [InlineData("/proc/1")]
    public async Task Collect_OutReplacedBySymlink_ReturnsNothingFromTheHost(string target)
    {
        Directory.Delete(Out);
        File.CreateSymbolicLink(Out, target);

        var collected = await CollectAsync();

        Assert.Empty(collected.Files);
        Assert.Contains("out is not a folder", collected.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collect_OutLinkedToTheServiceDataFolder_ReturnsNothing()
    {
        var data = Directory.CreateTempSubdirectory("runbox-secret-data-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(data, "redis.conf"), "requirepass hunter2", TestContext.Current.CancellationToken);
            Directory.Delete(Out);
            File.CreateSymbolicLink(Out, data);

            var collected = await CollectAsync();

            Assert.Empty(collected.Files);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>/work/out pointed at a FIFO's folder (as /dev with its ttys would be): the old walk opened it and never returned.</summary>
    [Fact]
    public async Task Collect_OutLinkedToAFolderWithAFifo_ReturnsWithoutBlocking()
    {
        var elsewhere = Directory.CreateTempSubdirectory("runbox-fifo-").FullName;
        try
        {
            Run("mkfifo", Path.Combine(elsewhere, "a-fifo"));
            Directory.Delete(Out);
            File.CreateSymbolicLink(Out, elsewhere);

            var collected = await CollectAsync();

            Assert.Empty(collected.Files);
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task Collect_OutRemoved_ReturnsNothingWithANote()
    {
        Directory.Delete(Out);

        var collected = await CollectAsync();

        Assert.Empty(collected.Files);
        Assert.Contains("no out folder", collected.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collect_OutIsAFile_ReturnsNothing()
    {
        Directory.Delete(Out);
        await File.WriteAllTextAsync(Out, "not a folder", TestContext.Current.CancellationToken);

        var collected = await CollectAsync();

        Assert.Empty(collected.Files);
        Assert.Contains("out is not a folder", collected.Note, StringComparison.Ordinal);
    }

    /// <summary>Things a program cannot make (mknod is refused) but the collector must not trust that: a FIFO, a device node, a socket.</summary>
    [Fact]
    public async Task Collect_FifoDeviceAndSocketInOut_SkippedWithoutBlocking()
    {
        Run("mkfifo", Path.Combine(Out, "a-fifo"));
        Run("mknod", Path.Combine(Out, "a-null"), "c", "1", "3");
        Run("python3", "-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{Path.Combine(Out, "a-socket")}')");
        await File.WriteAllTextAsync(Path.Combine(Out, "kept.txt"), "kept", TestContext.Current.CancellationToken);

        var collected = await CollectAsync();

        Assert.Equal(["kept.txt"], collected.Files.Select(f => f.Name));
        Assert.Contains("a-fifo", collected.Note, StringComparison.Ordinal);
        Assert.Contains("a-null", collected.Note, StringComparison.Ordinal);
        Assert.Contains("a-socket", collected.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collect_SymlinksInsideOut_NotFollowed()
    {
        File.CreateSymbolicLink(Path.Combine(Out, "shadow"), "/etc/shadow");
        File.CreateSymbolicLink(Path.Combine(Out, "etc"), "/etc");
        Directory.CreateDirectory(Path.Combine(Out, "sub"));
        File.CreateSymbolicLink(Path.Combine(Out, "sub", "environ"), "/proc/self/environ");
        await File.WriteAllTextAsync(Path.Combine(Out, "sub", "real.txt"), "real", TestContext.Current.CancellationToken);

        var collected = await CollectAsync();

        Assert.Equal(["sub/real.txt"], collected.Files.Select(f => f.Name));
    }

    /// <summary>
    /// A mount inside out (a program cannot make one; the collector still does not cross into it). Collected
    /// before /work leaves the host's mount table, since that takes the mounts below it along.
    /// </summary>
    [Fact]
    public async Task Collect_MountInsideOut_NotCrossed()
    {
        var inside = Directory.CreateDirectory(Path.Combine(Out, "etc")).FullName;
        Run("mount", "--bind", "-o", "ro", "/etc", inside);
        try
        {
            var collected = await CollectAsync(detach: false);

            Assert.Empty(collected.Files);
            Assert.Contains("etc (on another file system)", collected.Note, StringComparison.Ordinal);
        }
        finally
        {
            Run("umount", "-l", inside);
        }
    }

    [Fact]
    public async Task Collect_NamesThatAreNotUtf8_SkippedAndTheRestReturned()
    {
        // Bytes 0xff and 0xfe are never valid UTF-8.
        Run("bash", "-c", $"cd '{Out}' && mkdir $'bad\\xffdir' && echo x > $'bad\\xffdir/inner.txt' && echo y > $'bad\\xfefile' && echo z > good.txt");

        var collected = await CollectAsync();

        Assert.Equal(["good.txt"], collected.Files.Select(f => f.Name));
        Assert.Contains("not UTF-8", collected.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collect_TreeDeeperThanPathMax_ReturnsTheShallowFiles()
    {
        // 300 levels of 20-character names: 6,300 characters, beyond PATH_MAX (4,096).
        Run("bash", "-c", $"cd '{Out}' && echo top > top.txt && for i in $(seq 300); do mkdir aaaaaaaaaaaaaaaaaaaa && cd aaaaaaaaaaaaaaaaaaaa || exit 1; done && echo deep > deep.txt");

        var collected = await CollectAsync();

        Assert.Equal(["top.txt"], collected.Files.Select(f => f.Name));
        Assert.Contains("deeper than", collected.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collect_ManyFilesAndOneHuge_BoundedInCountAndBytes()
    {
        for (var i = 0; i < 100; i++)
        {
            await File.WriteAllTextAsync(Path.Combine(Out, $"f{i:D3}.txt"), "small", TestContext.Current.CancellationToken);
        }
        await using (var huge = File.Create(Path.Combine(Out, "e-huge.bin")))
        {
            huge.SetLength(2 * MaxBytes);
        }

        var collected = await CollectAsync();

        Assert.Equal(MaxCount, collected.Files.Count);
        Assert.Equal("f000.txt", collected.Files[0].Name);
        Assert.DoesNotContain(collected.Files, f => f.Name == "e-huge.bin");
        Assert.Contains("e-huge.bin", collected.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collect_OrdinaryFiles_ReturnedInNameOrderWithContent()
    {
        await File.WriteAllTextAsync(Path.Combine(Out, "b.txt"), "bee", TestContext.Current.CancellationToken);
        Directory.CreateDirectory(Path.Combine(Out, "a"));
        await File.WriteAllTextAsync(Path.Combine(Out, "a", "z.txt"), "zed", TestContext.Current.CancellationToken);

        var collected = await CollectAsync();

        Assert.Equal(["a/z.txt", "b.txt"], collected.Files.Select(f => f.Name));
        Assert.Equal("zed"u8.ToArray(), collected.Files[0].Content);
        Assert.Null(collected.Note);
    }

    public void Dispose()
    {
        _run.Dispose();
        Directory.Delete(_runs, recursive: true);
    }

    /// <summary>Collects as a run does, after /work left the host's mount table; a collection that blocks fails the test.</summary>
    private async Task<ArtifactCollection> CollectAsync(bool detach = true)
    {
        if (detach)
        {
            _run.DetachWork();
        }
        return await Task.Run(() => _run.CollectArtifacts(MaxCount, MaxBytes), TestContext.Current.CancellationToken).WaitAsync(NoBlock, TestContext.Current.CancellationToken);
    }

    private static void Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)}: {error}");
    }
}
