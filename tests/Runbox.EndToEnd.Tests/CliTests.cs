using System.Diagnostics;
using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>The `runbox` client commands against a real server, as a user types them.</summary>
[Collection("serve")]
public sealed class CliTests(ServeFixture fixture)
{
    [Fact]
    public async Task SubmitWait_StreamsOutputAndExitsWithTheProgramsCode()
    {
        var file = Path.Combine(TestEnvironment.NewDataDirectory(), "hello.py");
        await File.WriteAllTextAsync(file, "import sys\nprint('out', input())\nprint('err', file=sys.stderr)\nsys.exit(7)", TestContext.Current.CancellationToken);

        var (code, stdout, stderr) = await RunAsync(ServeFixture.BobKey, "submit", file, "--stdin", "line", "--wait");

        Assert.Equal(7, code);
        Assert.Equal("out line\n", stdout);
        Assert.Contains("err\n", stderr, StringComparison.Ordinal);
        Assert.Contains("runtime_error", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitStatusCancel_WorkOnOneTask()
    {
        var file = Path.Combine(TestEnvironment.NewDataDirectory(), "slow.sh");
        await File.WriteAllTextAsync(file, "sleep 20", TestContext.Current.CancellationToken);

        var (submitted, id, _) = await RunAsync(ServeFixture.BobKey, "submit", file, "--wall-time-ms", "30000");
        id = id.Trim();
        using var bob = fixture.Client(ServeFixture.BobKey);
        await bob.WaitForStatusAsync(id, "running");
        var (statusCode, status, _) = await RunAsync(ServeFixture.BobKey, "status", id);
        var (cancelCode, _, _) = await RunAsync(ServeFixture.BobKey, "cancel", id);

        Assert.Equal(0, submitted);
        Assert.True(Guid.TryParse(id, out _), id);
        Assert.Equal(0, statusCode);
        Assert.Contains("running", status, StringComparison.Ordinal);
        Assert.Equal(0, cancelCode);
        await bob.WaitForStatusAsync(id, "cancelled");
    }

    [Fact]
    public async Task Languages_ListsPython_AndUnknownCommandIsUsageError()
    {
        var (code, stdout, _) = await RunAsync(ServeFixture.AliceKey, "languages");
        var (usage, _, error) = await RunAsync(ServeFixture.AliceKey, "frobnicate");
        var (badFile, _, fileError) = await RunAsync(ServeFixture.AliceKey, "submit", "/nonexistent/x.py");

        Assert.Equal(0, code);
        Assert.Contains("python", stdout, StringComparison.Ordinal);
        Assert.Equal(2, usage);
        Assert.Contains("Unknown command", error, StringComparison.Ordinal);
        Assert.Equal(2, badFile);
        Assert.Contains("No such file", fileError, StringComparison.Ordinal);
    }

    /// <summary>
    /// Finding 14 of the security review: a program's escape sequences reached the terminal of whoever looked
    /// at its output (OSC 52 writes the clipboard). On a terminal they are shown, not obeyed; in a pipe the
    /// output stays exact.
    /// </summary>
    [Fact]
    public async Task SubmitWait_EscapeSequencesInOutput_ShownOnATerminalAndKeptInAPipe()
    {
        var file = Path.Combine(TestEnvironment.NewDataDirectory(), "escapes.py");
        await File.WriteAllTextAsync(file, "print('\\x1b]52;c;aGk=\\x07\\x1b[2Jtext\\x9b')", TestContext.Current.CancellationToken);

        var (_, piped, _) = await RunAsync(ServeFixture.BobKey, "submit", file, "--wait");
        var (_, terminal, _) = await RunAsync(ServeFixture.BobKey, terminal: true, "submit", file, "--wait");

        Assert.Equal("\u001b]52;c;aGk=\u0007\u001b[2Jtext\u009b\n", piped);
        Assert.Contains("^[]52;c;aGk=^G^[[2Jtext\\u009b", terminal, StringComparison.Ordinal);
        // (The terminal also gets the CLI's own sequences: its progress line, .NET's keypad mode.)
        Assert.DoesNotContain("\u001b]52", terminal, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[2J", terminal, StringComparison.Ordinal);
        Assert.DoesNotContain('\u009b', terminal);
    }

    private Task<(int Code, string Stdout, string Stderr)> RunAsync(string key, params string[] args) => RunAsync(key, terminal: false, args);

    /// <summary>Runs the CLI; with <paramref name="terminal"/> its output goes to a pseudo-terminal (util-linux script), read back as stdout.</summary>
    private async Task<(int Code, string Stdout, string Stderr)> RunAsync(string key, bool terminal, params string[] args)
    {
        var start = new ProcessStartInfo(terminal ? "script" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        var command = new List<string> { "dotnet", Path.Combine(AppContext.BaseDirectory, "runbox.dll") };
        command.AddRange(args);
        if (terminal)
        {
            start.ArgumentList.Add("-qec");
            start.ArgumentList.Add(string.Join(' ', command.Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'")));
            start.ArgumentList.Add("/dev/null");
        }
        else
        {
            foreach (var arg in command.Skip(1))
            {
                start.ArgumentList.Add(arg);
            }
        }
        start.Environment["RUNBOX_URL"] = fixture.Server.BaseAddress.ToString();
        start.Environment["RUNBOX_API_KEY"] = key;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await stdout, await stderr);
    }
}
