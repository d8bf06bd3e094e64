using System.Diagnostics;
using Runbox.Core.Execution;
using Runbox.Core.Limits;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Sandbox.Tests;

/// <summary>
/// The sandbox contract, run against a real OCI runtime: once on crun, once on runc (the subclasses).
/// Every test also checks that its run left no container, cgroup, folder or mount behind.
/// </summary>
public abstract class SandboxContractTests(SandboxFixture fixture) : IAsyncLifetime
{
    private static readonly string[] AllLanguages = ["bash", "c", "cpp", "java", "javascript", "python"];

    public static TheoryData<string, string> HelloWorlds { get; } = new()
    {
        { "python", "print('hello, world')" },
        { "c", "#include <stdio.h>\nint main(void) { puts(\"hello, world\"); return 0; }" },
        { "cpp", "#include <iostream>\nint main() { std::cout << \"hello, world\" << std::endl; }" },
        { "javascript", "console.log('hello, world');" },
        { "bash", "echo 'hello, world'" },
        { "java", "public class Main { public static void main(String[] a) { System.out.println(\"hello, world\"); } }" },
    };

    public static TheoryData<string, string> Echoes { get; } = new()
    {
        { "python", "import sys\nsys.stdout.write(sys.stdin.read())" },
        { "c", "#include <stdio.h>\nint main(void) { int c; while ((c = getchar()) != EOF) putchar(c); return 0; }" },
        { "cpp", "#include <iostream>\n#include <string>\nint main() { std::string l; while (std::getline(std::cin, l)) std::cout << l << '\\n'; }" },
        { "javascript", "process.stdin.pipe(process.stdout);" },
        { "bash", "cat" },
        {
            "java",
            "import java.io.*;\npublic class Main { public static void main(String[] a) throws IOException { System.in.transferTo(System.out); } }"
        },
    };

    protected SandboxFixture Fixture { get; } = fixture;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        Assert.Empty(await Fixture.LeftoversAsync());
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void Runtime_StartedExplicitly_IsTheRequestedOne() => Assert.Equal(Fixture.Runtime, Fixture.Sandbox.RuntimeName);

    [Fact]
    public void Languages_OnThisHost_OfferAllSixWithVersions()
    {
        Assert.Equal(AllLanguages, Fixture.Sandbox.Languages.Select(l => l.Id).Order(StringComparer.Ordinal));
        Assert.All(Fixture.Sandbox.Languages, l => Assert.Matches(@"^\d+\.\d+", l.Version));
        Assert.True(Fixture.Sandbox.Languages.Single(l => l.Id == "java").Compiled);
        Assert.False(Fixture.Sandbox.Languages.Single(l => l.Id == "python").Compiled);
    }

    [Theory]
    [MemberData(nameof(HelloWorlds))]
    public async Task RunAsync_HelloWorld_PrintsGreeting(string language, string source)
    {
        var result = await Fixture.RunAsync(language, source);

        Assert.True(result.Verdict == Verdict.Ok, Describe(result));
        Assert.Equal("hello, world\n", result.Stdout);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(language is "c" or "cpp" or "java", result.Compile is { Succeeded: true });
        Assert.True(result.MemoryPeakBytes > 0);
    }

    [Theory]
    [MemberData(nameof(Echoes))]
    public async Task RunAsync_StdinEcho_ReturnsInput(string language, string source)
    {
        var input = "first line\nsecond line ü\n";

        var result = await Fixture.RunAsync(language, source, stdin: input);

        Assert.True(result.Verdict == Verdict.Ok, Describe(result));
        Assert.Equal(input, result.Stdout);
    }

    [Fact]
    public async Task RunAsync_StdoutAndStderr_KeptApart()
    {
        var result = await Fixture.RunAsync("bash", "echo out; echo err >&2");

        Assert.Equal("out\n", result.Stdout);
        Assert.Equal("err\n", result.Stderr);
    }

    [Fact]
    public async Task RunAsync_CompileError_ReturnsCompileErrorWithCompilerOutput()
    {
        var result = await Fixture.RunAsync("c", "int main(void) { return undefined_name; }");

        Assert.Equal(Verdict.CompileError, result.Verdict);
        Assert.NotNull(result.Compile);
        Assert.False(result.Compile.Succeeded);
        Assert.Contains("undefined_name", result.Compile.Output, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task RunAsync_NonZeroExit_ReturnsRuntimeErrorWithExitCode()
    {
        var result = await Fixture.RunAsync("python", "import sys\nprint('before')\nsys.exit(3)");

        Assert.Equal(Verdict.RuntimeError, result.Verdict);
        Assert.Equal(3, result.ExitCode);
        Assert.Null(result.Signal);
        Assert.Equal("before\n", result.Stdout);
    }

    [Fact]
    public async Task RunAsync_Segfault_ReturnsRuntimeErrorWithSignalName()
    {
        var result = await Fixture.RunAsync("c", "int main(void) { volatile int *p = 0; *p = 1; return 0; }");

        Assert.Equal(Verdict.RuntimeError, result.Verdict);
        Assert.Equal("SIGSEGV", result.Signal);
    }

    [Fact]
    public async Task RunAsync_InfiniteLoop_ReturnsTimeLimitAfterWallTime()
    {
        var limits = FixtureLimits(wall: TimeSpan.FromSeconds(1));

        var result = await Fixture.RunAsync("python", "while True: pass", limits: limits);

        Assert.Equal(Verdict.TimeLimit, result.Verdict);
        Assert.InRange(result.WallTime, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(4));
    }

    [Fact]
    public async Task RunAsync_ProgramHandlingSigterm_PrintsBeforeItEnds()
    {
        var source = """
            import signal, sys, time
            def bye(*_):
                print("got SIGTERM, saving", flush=True)
                sys.exit(0)
            signal.signal(signal.SIGTERM, bye)
            print("working", flush=True)
            while True:
                time.sleep(0.05)
            """;

        var result = await Fixture.RunAsync("python", source, limits: FixtureLimits(wall: TimeSpan.FromSeconds(1)));

        Assert.Equal(Verdict.TimeLimit, result.Verdict);
        Assert.Equal("working\ngot SIGTERM, saving\n", result.Stdout);
    }

    [Fact]
    public async Task RunAsync_BusyVersusSleeping_CpuTimeFollowsWork()
    {
        // Busy until it has used 0.5 s of CPU (not of wall time: the host may be loaded).
        var busy = await Fixture.RunAsync("python", "import time\nwhile time.process_time() < 0.5: pass");
        var sleeping = await Fixture.RunAsync("python", "import time\ntime.sleep(0.6)");

        Assert.Equal(Verdict.Ok, busy.Verdict);
        Assert.Equal(Verdict.Ok, sleeping.Verdict);
        Assert.True(busy.CpuTime >= TimeSpan.FromSeconds(0.5), Describe(busy));
        Assert.True(sleeping.CpuTime < TimeSpan.FromSeconds(0.3), Describe(sleeping));
        Assert.True(sleeping.WallTime >= TimeSpan.FromSeconds(0.6), Describe(sleeping));
    }

    [Fact]
    public async Task RunAsync_TwoBusyThreads_GetOneCpuBetweenThem()
    {
        // Two spinning threads for 1.5 s of wall time; the run's CPU quota (one CPU, SandboxOptions.Cpus)
        // holds them to one between them. Unlimited they would take two cores, but only on an idle host
        // (the other runtime's tests run alongside), so the quota is also read while they spin.
        var source = """
            #include <pthread.h>
            #include <stdio.h>
            #include <time.h>
            static void *spin(void *arg) { (void)arg; for (;;) { } return NULL; }
            static double now(clockid_t clock) { struct timespec t; clock_gettime(clock, &t); return t.tv_sec + t.tv_nsec / 1e9; }
            int main(void) {
              pthread_t a, b;
              double wall = now(CLOCK_MONOTONIC), cpu = now(CLOCK_PROCESS_CPUTIME_ID);
              pthread_create(&a, NULL, spin, NULL);
              pthread_create(&b, NULL, spin, NULL);
              fprintf(stderr, "spinning\n");
              struct timespec pause = { 1, 500000000 };
              nanosleep(&pause, NULL);
              printf("%.3f %.3f\n", now(CLOCK_PROCESS_CPUTIME_ID) - cpu, now(CLOCK_MONOTONIC) - wall);
              return 0;
            }
            """;
        var spinning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var run = Fixture.Sandbox.RunAsync(SandboxFixture.Spec("c", source), new SignalOnOutput(spinning), TestContext.Current.CancellationToken);
        await spinning.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        // cgroup v1 has the quota alone in its own file, v2 the quota and the period in one.
        var v1 = Fixture.Sandbox.CgroupVersion == "v1";
        var quotas = Directory.GetDirectories(SandboxFixture.RunCgroupParent("cpu"), Fixture.Sandbox.ContainerPrefix + "*")
            .Select(run => File.ReadAllText(Path.Combine(run, v1 ? "cpu.cfs_quota_us" : "cpu.max")).Trim())
            .ToList();
        var result = await run;

        Assert.Equal(Verdict.Ok, result.Verdict);
        Assert.Equal([v1 ? "100000" : "100000 100000"], quotas);
        var measured = result.Stdout.Split(' ').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.True(measured[0] / measured[1] < 1.2, $"CPU {measured[0]} s over {measured[1]} s of wall time; {Describe(result)}");
    }

    /// <summary>
    /// Regression: every run had a cgroup name of its own, and the kernel keeps a negative dentry for each
    /// removed name in each hierarchy, so the dentry cache grew by five entries per run without bound.
    /// </summary>
    [Fact]
    public async Task RunAsync_OneRunAfterAnother_ReuseTheRunCgroupName()
    {
        var names = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var run = Fixture.Sandbox.RunAsync(SandboxFixture.Spec("bash", "echo up; sleep 0.2"), new SignalOnOutput(running), TestContext.Current.CancellationToken);
            await running.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            names.Add(Path.GetFileName(Assert.Single(Directory.GetDirectories(SandboxFixture.RunCgroupParent("memory"), Fixture.Sandbox.ContainerPrefix + "*"))));
            var result = await run;
            Assert.Equal(Verdict.Ok, result.Verdict);
        }

        Assert.Single(names.Distinct());
        Assert.Empty(Directory.GetDirectories(SandboxFixture.RunCgroupParent("memory"), Fixture.Sandbox.ContainerPrefix + "*"));
    }

    [Fact]
    public async Task RunAsync_CpuTimeOverLimit_ReturnsTimeLimitBeforeWallTime()
    {
        var limits = FixtureLimits(wall: TimeSpan.FromSeconds(10)) with { CpuTime = TimeSpan.FromMilliseconds(500) };

        var result = await Fixture.RunAsync("python", "while True: pass", limits: limits);

        Assert.Equal(Verdict.TimeLimit, result.Verdict);
        // Well before the 10 s wall limit: the CPU watchdog stopped it (later than 0.5 s on a busy host).
        Assert.True(result.WallTime < TimeSpan.FromSeconds(8), Describe(result));
        Assert.True(result.CpuTime >= TimeSpan.FromMilliseconds(500), Describe(result));
    }

    [Fact]
    public async Task RunAsync_MemoryBomb_ReturnsMemoryLimit()
    {
        var limits = FixtureLimits() with { MemoryBytes = 64L << 20 };

        var result = await Fixture.RunAsync("python", "chunks = []\nwhile True: chunks.append(bytearray(8 << 20))", limits: limits);

        Assert.Equal(Verdict.MemoryLimit, result.Verdict);
        Assert.True(result.MemoryPeakBytes >= 60L << 20, Describe(result));
    }

    [Fact]
    public async Task RunAsync_MemoryBombInGrandchild_ReturnsMemoryLimit()
    {
        var limits = FixtureLimits() with { MemoryBytes = 64L << 20 };
        // The shell survives and exits 0: only the cgroup's oom_kill counter shows what happened.
        var source = "python3 -c 'b = []\nwhile True: b.append(bytearray(8 << 20))' 2>/dev/null\necho survived";

        var result = await Fixture.RunAsync("bash", source, limits: limits);

        Assert.Equal(Verdict.MemoryLimit, result.Verdict);
        Assert.Equal("survived\n", result.Stdout);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task RunAsync_ForkBomb_IsContainedAndStoppedAtWallTime()
    {
        var limits = FixtureLimits(wall: TimeSpan.FromSeconds(1.5)) with { Processes = 32 };
        var source = "#include <unistd.h>\nint main(void) { for (;;) fork(); }";

        var result = await Fixture.RunAsync("c", source, limits: limits);

        Assert.Equal(Verdict.TimeLimit, result.Verdict);
        // Contained: the bomb ran into its process limit, which the result says.
        Assert.Contains("reached its process limit", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_ForksPastProcessLimit_FailAndTheErrorSaysWhy()
    {
        var limits = FixtureLimits() with { Processes = 8 };
        var source = """
            import os, sys, time
            try:
                for _ in range(50):
                    if os.fork() == 0:
                        time.sleep(5)
                        os._exit(0)
            except OSError as e:
                print("fork failed", e.errno)
                sys.exit(3)
            """;

        var result = await Fixture.RunAsync("python", source, limits: limits);

        Assert.Equal(Verdict.RuntimeError, result.Verdict);
        Assert.Equal("fork failed 11\n", result.Stdout);
        Assert.Equal("the program reached its process limit (8); forks past it failed", result.Error);
    }

    [Fact]
    public async Task RunAsync_OutputFlood_ReturnsOutputLimitWithPartialOutput()
    {
        var limits = FixtureLimits() with { OutputBytes = 32 << 10 };

        var result = await Fixture.RunAsync("python", "import sys\nwhile True: sys.stdout.write('y' * 1000 + '\\n')", limits: limits);

        Assert.Equal(Verdict.OutputLimit, result.Verdict);
        Assert.True(result.StdoutTruncated);
        Assert.Equal(32 << 10, result.Stdout.Length);
        Assert.StartsWith(new string('y', 1000) + "\n", result.Stdout, StringComparison.Ordinal);
        Assert.True(result.WallTime < TimeSpan.FromSeconds(5), Describe(result));
    }

    [Theory]
    [InlineData("/work")]
    [InlineData("/tmp")]
    public async Task RunAsync_DiskFill_StopsAtDiskLimit(string folder)
    {
        var limits = FixtureLimits() with { DiskBytes = 8L << 20 };
        var source = $$"""
            written = 0
            try:
                for i in range(64):
                    with open(f"{{folder}}/fill{i}", "wb") as f:
                        for _ in range(4):
                            f.write(b"x" * (256 << 10))
                            f.flush()
                            written += 256 << 10
            except OSError as e:
                print("stopped", e.errno)
            print(written >> 20)
            """;

        var result = await Fixture.RunAsync("python", source, limits: limits);

        Assert.Equal(Verdict.Ok, result.Verdict);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("stopped 28", lines[0]);
        Assert.InRange(int.Parse(lines[1], System.Globalization.CultureInfo.InvariantCulture), 6, 8);
    }

    [Fact]
    public async Task RunAsync_NetworkConnectAndDns_Fail()
    {
        var source = """
            import socket
            for host, port in (("1.1.1.1", 53), ("10.0.0.1", 80)):
                try:
                    socket.create_connection((host, port), timeout=2)
                    print("connected", host)
                except OSError as e:
                    print("refused", e.errno)
            try:
                socket.getaddrinfo("example.com", 80)
                print("resolved")
            except socket.gaierror:
                print("no dns")
            """;

        var result = await Fixture.RunAsync("python", source);

        Assert.Equal("refused 101\nrefused 101\nno dns\n", result.Stdout);
    }

    [Fact]
    public async Task RunAsync_HostSecrets_AreUnreadable()
    {
        var otherRun = Fixture.Sandbox.RunsDirectory;
        var source = $"""
            for path in /etc/shadow /root {Fixture.StateDirectory} {otherRun}; do
              if cat "$path" >/dev/null 2>&1 || ls "$path" >/dev/null 2>&1; then echo "readable $path"; else echo "denied $path"; fi
            done
            # PID 1 here is tini (the static build of Debian's package) in the container's own pid namespace, not the host's init.
            tr '\0' ' ' </proc/1/cmdline; echo
            """;

        var result = await Fixture.RunAsync("bash", source);

        Assert.Equal(
            $"denied /etc/shadow\ndenied /root\ndenied {Fixture.StateDirectory}\ndenied {otherRun}\n/usr/bin/tini-static -- /usr/bin/bash main.sh \n",
            result.Stdout);
    }

    [Fact]
    public async Task RunAsync_WritesOutsideWorkAndTmp_Fail()
    {
        var source = """
            for path in /x /usr/x /etc/x /bin/x /dev/x /proc/sys/kernel/hostname /sys/x /work/x /tmp/x /dev/shm/x; do
              if (echo data > "$path") 2>/dev/null; then echo "wrote $path"; else echo "denied $path"; fi
            done
            """;

        var result = await Fixture.RunAsync("bash", source);

        Assert.Equal(
            "denied /x\ndenied /usr/x\ndenied /etc/x\ndenied /bin/x\ndenied /dev/x\ndenied /proc/sys/kernel/hostname\ndenied /sys/x\n"
            + "wrote /work/x\nwrote /tmp/x\nwrote /dev/shm/x\n",
            result.Stdout);
    }

    [Fact]
    public async Task RunAsync_NamespaceMountAndPtraceCalls_AreRefused()
    {
        var source = """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            def report(name, rc):
                print(name, "refused" if rc == -1 else "ALLOWED", ctypes.get_errno())
            report("unshare", libc.unshare(0x10000000))
            report("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
            report("ptrace", libc.ptrace(16, 1, 0, 0))
            report("setns", libc.setns(0, 0))
            report("keyctl", libc.syscall(250, 0, 0, 0, 0, 0))
            report("bpf", libc.syscall(321, 0, 0, 0))
            report("io_uring_setup", libc.syscall(425, 1, 0))
            report("clone_newuser", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
            """;

        var result = await Fixture.RunAsync("python", source);

        Assert.Equal(
            "unshare refused 1\nmount refused 1\nptrace refused 1\nsetns refused 1\nkeyctl refused 1\nbpf refused 1\n"
            + "io_uring_setup refused 1\nclone_newuser refused 38\n",
            result.Stdout);
        var shell = await Fixture.RunAsync("bash", "unshare -U true 2>/dev/null && echo escaped || echo blocked");
        Assert.Equal("blocked\n", shell.Stdout);
    }

    [Fact]
    public async Task RunAsync_SetuidBinary_GivesNoPrivilege()
    {
        var source = """
            [ -u /usr/bin/su ] && echo "su is setuid"
            grep '^NoNewPrivs:' /proc/self/status | tr -d '\t'
            awk '$5 == "/usr" { print ($6 ~ /nosuid/) ? "usr nosuid" : "usr suid" }' /proc/self/mountinfo
            /usr/bin/su -c 'id -u' root </dev/null >/dev/null 2>&1 && echo "became root" || echo "su failed"
            id -u
            """;

        var result = await Fixture.RunAsync("bash", source);

        var lines = result.Stdout.Split('\n');
        Assert.Equal(["su is setuid", "NoNewPrivs:1", "usr nosuid", "su failed"], lines[..4]);
        // A uid of the run's own, from the range no host account has (SandboxUids).
        Assert.InRange(long.Parse(lines[4], System.Globalization.CultureInfo.InvariantCulture), SandboxOptions.DefaultUidRangeStart, SandboxOptions.DefaultUidRangeStart + SandboxOptions.DefaultUidRangeLength - 1);
    }

    /// <summary>
    /// Regression (finding 10 of the security review): host binds were read-only but not recursively, so a
    /// host mount below /usr (a /usr/local on a disk of its own) was writable, suid and dev inside.
    /// </summary>
    [Fact]
    public async Task RunAsync_HostMountBelowUsr_IsReadOnlyInside()
    {
        var below = Directory.CreateDirectory($"/usr/local/share/runbox-test-{Fixture.Runtime}").FullName;
        Mount("-t", "tmpfs", "tmpfs", below);
        try
        {
            var result = await Fixture.RunAsync("bash", $"touch {below}/x 2>/dev/null && echo wrote || echo refused; awk '$5 == \"{below}\" {{ print $6 }}' /proc/self/mountinfo");

            Assert.Equal("refused", result.Stdout.Split('\n')[0]);
            Assert.Equal(["ro", "nosuid", "nodev"], result.Stdout.Split('\n')[1].Split(',').Where(o => o is "ro" or "nosuid" or "nodev"));
        }
        finally
        {
            Mount("-l", below);
            Directory.Delete(below);
        }
    }

    private static void Mount(params string[] args)
    {
        using var process = Process.Start(args[0] == "-l" ? "umount" : "mount", args)!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    /// <summary>
    /// Regression: crun sits in the run's memory cgroup (CgroupPlacement) and the program had the same OOM
    /// score, so a program of many processes smaller than crun could get crun killed instead of itself.
    /// A program may lower its score back to the default, never below it.
    /// </summary>
    [Fact]
    public async Task RunAsync_Program_IsTheOomKillersFirstChoiceAndCannotGoBelowTheDefault()
    {
        var source = """
            cat /proc/self/oom_score_adj /proc/1/oom_score_adj
            (echo -1 > /proc/self/oom_score_adj) 2>/dev/null && echo below || echo refused
            """;

        var result = await Fixture.RunAsync("bash", source);

        Assert.Equal("1000\n1000\nrefused\n", result.Stdout);
    }

    [Fact]
    public async Task RunAsync_FilesInWorkOut_ReturnedAsArtifactsWithoutSymlinks()
    {
        var source = "echo report > out/report.txt; mkdir out/sub; printf 'a' > out/sub/a.bin; ln -s /etc/shadow out/shadow; ln -s /etc out/etc";

        var result = await Fixture.RunAsync("bash", source);

        Assert.Equal(Verdict.Ok, result.Verdict);
        Assert.Equal(["report.txt", "sub/a.bin"], result.Artifacts.Select(a => a.Name));
        Assert.Equal("report\n"u8.ToArray(), result.Artifacts[0].Content);
    }

    [Fact]
    public async Task RunAsync_ExtraFilesAndArgs_ReachTheProgram()
    {
        var spec = new TaskSpec
        {
            User = "test",
            Language = "python",
            Source = "import sys, util\nprint(util.X, sys.argv[1:])",
            Files = [new TaskFile("util.py", "X = 42")],
            Args = ["a", "b c"],
            Limits = SandboxFixture.TestLimits,
        };

        var result = await Fixture.Sandbox.RunAsync(spec, NullOutputSink.Instance, TestContext.Current.CancellationToken);

        Assert.Equal("42 ['a', 'b c']\n", result.Stdout);
    }

    /// <summary>Regression: the API accepted files in folders and the sandbox refused them, which failed the attempt as internal_error.</summary>
    [Fact]
    public async Task RunAsync_FilesInFolders_ReachTheProgram()
    {
        var spec = new TaskSpec
        {
            User = "test",
            Language = "python",
            Source = "from pkg import util\nfrom pkg.sub import deep\nprint(util.X, deep.Y)",
            Files = [new TaskFile("pkg/__init__.py", ""), new TaskFile("pkg/util.py", "X = 1"), new TaskFile("pkg/sub/__init__.py", ""), new TaskFile("pkg/sub/deep.py", "Y = 2")],
            Limits = SandboxFixture.TestLimits,
        };

        var result = await Fixture.Sandbox.RunAsync(spec, NullOutputSink.Instance, TestContext.Current.CancellationToken);

        Assert.True(result.Verdict == Verdict.Ok, Describe(result));
        Assert.Equal("1 2\n", result.Stdout);
    }

    [Fact]
    public async Task RunAsync_FiftyInParallel_AllCorrect()
    {
        var runs = Enumerable.Range(0, 50).Select(i => Fixture.RunAsync("bash", "read n; echo $((n * 2))", stdin: $"{i}\n")).ToArray();

        var results = await Task.WhenAll(runs);

        for (var i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].Verdict == Verdict.Ok, Describe(results[i]));
            Assert.Equal($"{i * 2}\n", results[i].Stdout);
        }
    }

    [Fact]
    public async Task RunAsync_Cancelled_ReturnsCancelledWithPartialOutput()
    {
        using var cancellation = new CancellationTokenSource();
        var sink = new CancelOnOutput(cancellation);

        var result = await Fixture.Sandbox.RunAsync(
            SandboxFixture.Spec("python", "import time\nprint('started', flush=True)\ntime.sleep(30)"), sink, cancellation.Token);

        Assert.Equal(Verdict.Cancelled, result.Verdict);
        Assert.Equal("started\n", result.Stdout);
        Assert.True(result.WallTime < TimeSpan.FromSeconds(5), Describe(result));
    }

    [Fact]
    public async Task RunAsync_WhileTheProgramRuns_ItsWorkIsNotOnTheHostsMountTable()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // The sandbox writes stdin once the container is up and /work detached, so "up" comes after that;
        // the mount table is read while the program sleeps after it.
        var run = Fixture.Sandbox.RunAsync(
            SandboxFixture.Spec("bash", "read -r _; echo kept > out/kept.txt; echo up; sleep 1; cat main.sh >/dev/null && echo still readable", stdin: "go\n"),
            new SignalOnOutput(running), TestContext.Current.CancellationToken);
        await running.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        var mounts = await File.ReadAllTextAsync("/proc/self/mountinfo", TestContext.Current.CancellationToken);
        var result = await run;

        Assert.DoesNotContain(Fixture.Sandbox.RunsDirectory + "/", mounts, StringComparison.Ordinal);
        // The container still has its /work, and the service still reads what the program left in it.
        Assert.Equal("up\nstill readable\n", result.Stdout);
        Assert.Equal(["kept.txt"], result.Artifacts.Select(a => a.Name));
    }

    [Fact]
    public async Task RunAsync_Afterwards_NoThreadOfTheServiceIsInARunCgroup()
    {
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Fixture.RunAsync("bash", "true")));

        // This sandbox's run cgroups only: other test classes of this process run at the same time, and
        // one of them passes through a cgroup of its own under /runbox on purpose (CgroupPlacementTests).
        var placed = Directory.EnumerateDirectories("/proc/self/task")
            .Select(task => File.ReadAllText(Path.Combine(task, "cgroup")))
            .Where(cgroups => cgroups.Contains(SandboxFixture.RunCgroupPath + "/" + Fixture.Sandbox.ContainerPrefix, StringComparison.Ordinal))
            .ToList();
        Assert.Empty(placed);
    }

    [Fact]
    public async Task RunAsync_OutputSink_ReceivesOutputWhileRunning()
    {
        var sink = new RecordingSink();

        await Fixture.RunAsync("bash", "echo one; echo two >&2", sink: sink);

        Assert.Equal("one\n", sink.Text(OutputStream.Stdout));
        Assert.Equal("two\n", sink.Text(OutputStream.Stderr));
    }

    [Fact]
    public void Runtime_IsCalledThroughAReadOnlyMountOfItsBinary()
    {
        var path = Fixture.Sandbox.RuntimePath;

        Assert.Equal(Path.Combine(Fixture.StateDirectory, "bin", Fixture.Runtime), path);
        // What a container reaching the runtime's /proc/self/exe would try (CVE-2019-5736).
        // The open is refused either way; while a run executes the binary the kernel answers "Text file busy"
        // before it looks at the mount, so the mount's own flags are what show it read-only.
        Assert.ThrowsAny<IOException>(() => new FileStream(path, FileMode.Open, FileAccess.Write).Dispose());
        var mount = File.ReadLines("/proc/self/mountinfo").Select(line => line.Split(' ')).Last(fields => fields[4] == path);
        Assert.Contains("ro", mount[5].Split(','));
    }

    [Fact]
    public async Task RunAsync_UnknownLanguage_ReturnsInternalError()
    {
        var result = await Fixture.RunAsync("cobol", "DISPLAY 'HI'.");

        Assert.Equal(Verdict.InternalError, result.Verdict);
        Assert.Contains("cobol", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InitializeAsync_LeftoversOfCrashedInstance_AreRemoved()
    {
        var state = Path.Combine(Path.GetTempPath(), "runbox-sandbox-tests", $"{Fixture.Runtime}-crashed-{Guid.NewGuid():N}");
        try
        {
            var crashed = Fixture.CreateSandbox(state);
            await crashed.InitializeAsync(TestContext.Current.CancellationToken);
            var running = new TaskCompletionSource();
            var orphan = crashed.RunAsync(SandboxFixture.Spec("bash", "echo up; sleep 30"), new SignalOnOutput(running), CancellationToken.None);
            await running.Task.WaitAsync(TestContext.Current.CancellationToken);
            // A crash as the next instance sees it: the state folder is free, its container still runs.
            await crashed.DisposeAsync();
            Assert.NotEmpty(await Fixture.LeftoversAsync(crashed.ContainerPrefix, state));

            await using var successor = Fixture.CreateSandbox(state);
            await successor.InitializeAsync(TestContext.Current.CancellationToken);

            Assert.Empty(await Fixture.LeftoversAsync(successor.ContainerPrefix, state));
            // The orphaned run ends as soon as its container is gone, however it reports that.
            await Record.ExceptionAsync(() => orphan.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
            Assert.True(orphan.IsCompleted);
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    private static Limits FixtureLimits(TimeSpan? wall = null) =>
        SandboxFixture.TestLimits with { WallTime = wall ?? SandboxFixture.TestLimits.WallTime };

    private static string Describe(ExecutionResult result) =>
        $"verdict {result.Verdict}, exit {result.ExitCode}, signal {result.Signal}, wall {result.WallTime}, cpu {result.CpuTime}, "
        + $"memory {result.MemoryPeakBytes}, stdout '{result.Stdout}', stderr '{result.Stderr}', compile '{result.Compile?.Output}', error '{result.Error}'";

    private sealed class CancelOnOutput(CancellationTokenSource cancellation) : IOutputSink
    {
        public ValueTask WriteAsync(OutputStream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
        {
            cancellation.Cancel();
            return ValueTask.CompletedTask;
        }
    }

    protected sealed class SignalOnOutput(TaskCompletionSource signal) : IOutputSink
    {
        public ValueTask WriteAsync(OutputStream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
        {
            signal.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class RecordingSink : IOutputSink
    {
        private readonly Dictionary<OutputStream, List<byte>> _received = new() { [OutputStream.Stdout] = [], [OutputStream.Stderr] = [] };

        public ValueTask WriteAsync(OutputStream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
        {
            lock (_received)
            {
                _received[stream].AddRange(chunk.ToArray());
            }
            return ValueTask.CompletedTask;
        }

        public string Text(OutputStream stream)
        {
            lock (_received)
            {
                return System.Text.Encoding.UTF8.GetString([.. _received[stream]]);
            }
        }
    }
}

public sealed class CrunSandboxTests(CrunFixture fixture) : SandboxContractTests(fixture), IClassFixture<CrunFixture>
{
    /// <summary>
    /// crun on a cgroup v1 host starts inside the run's cgroup and creates none itself (CgroupPlacement); the
    /// container still gets the device allowlist a runtime would have given it. On cgroup v2 crun makes the
    /// container's cgroup beneath the run's, and the run's cgroup holds no process of its own.
    /// </summary>
    [Fact]
    public async Task RunAsync_TheContainerIsInTheRunCgroup_WithTheDeviceAllowlistOnV1()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var prefix = Fixture.Sandbox.ContainerPrefix;
        var v1 = Fixture.Sandbox.CgroupVersion == "v1";

        var run = Fixture.Sandbox.RunAsync(SandboxFixture.Spec("bash", "sleep 1 & echo up; wait"), new SignalOnOutput(running), TestContext.Current.CancellationToken);
        await running.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        var runCgroup = Assert.Single(Directory.GetDirectories(SandboxFixture.RunCgroupParent("memory"), prefix + "*"));
        var members = (await File.ReadAllLinesAsync(Path.Combine(runCgroup, "cgroup.procs"), TestContext.Current.CancellationToken)).ToList();
        var container = Path.Combine(runCgroup, "ctr");
        var containerMembers = Directory.Exists(container) ? (await File.ReadAllLinesAsync(Path.Combine(container, "cgroup.procs"), TestContext.Current.CancellationToken)).ToList() : [];
        var devicesOfMembers = v1 ? members.Select(pid => File.ReadAllLines($"/proc/{pid}/cgroup").Single(line => line.Contains(":devices:", StringComparison.Ordinal))).Distinct().ToList() : [];
        var allowed = v1 ? await File.ReadAllLinesAsync(Path.Combine(SandboxFixture.RunCgroupParent("devices"), Path.GetFileName(runCgroup), "devices.list"), TestContext.Current.CancellationToken) : [];
        var freezerRuns = v1 && Directory.Exists("/sys/fs/cgroup/freezer/runbox") ? Directory.GetDirectories("/sys/fs/cgroup/freezer/runbox", prefix + "*") : [];
        var result = await run;

        Assert.Equal(Verdict.Ok, result.Verdict);
        if (v1)
        {
            // The runtime, tini, bash and sleep.
            Assert.Equal(4, members.Count);
            // The device allowlist is the run cgroup's own, as the other limits are.
            Assert.Equal(SandboxFixture.RunCgroupPath + "/" + Path.GetFileName(runCgroup), Assert.Single(devicesOfMembers).Split(':', 3)[2]);
            Assert.Contains("c 1:3 rwm", allowed);
            Assert.DoesNotContain("a *:* rwm", allowed);
            Assert.Empty(freezerRuns);
        }
        else
        {
            // tini, bash and sleep, in the container's cgroup beneath the run's limits.
            Assert.Empty(members);
            Assert.Equal(3, containerMembers.Count);
        }
    }
}

public sealed class RuncSandboxTests(RuncFixture fixture) : SandboxContractTests(fixture), IClassFixture<RuncFixture>;
