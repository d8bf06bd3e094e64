using System.Text;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Tests;

/// <summary>The plain open/read/write/close file calls that cgroupfs control files are written and read with.</summary>
public sealed class LibcFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("runbox-libc-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void WriteFile_CreatesTheFileOrReplacesWhatItHeld()
    {
        var file = Path.Combine(_folder, "pids.max");

        Libc.WriteFile(file, "12345");
        Assert.Equal("12345", File.ReadAllText(file));

        Libc.WriteFile(file, "9");
        Assert.Equal("9", File.ReadAllText(file));
    }

    [Fact]
    public void WriteFile_InAMissingFolder_ThrowsFileNotFoundNamingThePath()
    {
        var file = Path.Combine(_folder, "gone", "pids.max");

        var error = Assert.Throws<FileNotFoundException>(() => Libc.WriteFile(file, "1"));

        Assert.Contains(file, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WriteFile_RefusedByTheKernel_ThrowsIOExceptionNotNotFound()
    {
        // /proc/version exists and takes no writes, as a cgroupfs file refuses a value it does not accept.
        var error = Assert.Throws<IOException>(() => Libc.WriteFile("/proc/version", "x"));

        Assert.Contains("/proc/version", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadFile_MissingFileOrFolder_IsNull()
    {
        Assert.Null(Libc.ReadFile(Path.Combine(_folder, "memory.peak")));
        Assert.Null(Libc.ReadFile(Path.Combine(_folder, "gone", "memory.peak")));
    }

    [Fact]
    public void ReadFile_LongerThanOneBuffer_ReadsItAll()
    {
        var file = Path.Combine(_folder, "cgroup.procs");
        var text = string.Join('\n', Enumerable.Range(100_000, 3_000)) + "\n";
        File.WriteAllText(file, text, Encoding.ASCII);

        Assert.Equal(text, Libc.ReadFile(file));
    }

    [Fact]
    public void ReadFile_KernelFile_ReadsItsText()
    {
        var status = Libc.ReadFile("/proc/self/status");

        Assert.NotNull(status);
        Assert.Contains($"Pid:\t{Environment.ProcessId}\n", status, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenReadOnly_MissingFile_ThrowsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => Libc.OpenReadOnly(Path.Combine(_folder, "memory.oom_control")).Dispose());
    }
}
