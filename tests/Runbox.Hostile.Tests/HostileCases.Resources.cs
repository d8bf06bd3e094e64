namespace Runbox.Hostile.Tests;

/// <summary>Exhausting the host: memory inside and outside the memory cgroup (finding 3), processes, disk, inodes, output, time.</summary>
public static partial class HostileCases
{
    /// <summary>What the socket-buffer cases may queue at most: the run's memory limit (64 MiB).</summary>
    private const int SocketCaseMemoryMb = 64;

    private static IEnumerable<HostileCase> Resources()
    {
        // Finding 3: TCP send buffers on the run's own loopback were charged to no one on cgroup v1. Four
        // processes each open as many connections as their descriptors allow and fill them.
        yield return new HostileCase("memory-tcp-socket-buffers", "python", SocketFill("""
            import socket
            def fill():
                listener = socket.socket()
                listener.bind(('127.0.0.1', 0))
                listener.listen(512)
                held, queued = [], 0
                while True:
                    try:
                        client = socket.create_connection(listener.getsockname())
                        held += [client, listener.accept()[0]]
                    except OSError:
                        return queued, held
                    client.setblocking(False)
                    while True:
                        try:
                            queued += client.send(b'x' * 65536)
                        except OSError:
                            break
            """))
        {
            Limits = Limits(memoryMb: SocketCaseMemoryMb, wallMs: 30_000),
            Check = (view, _) => QueuedWithinTheMemoryLimit(view),
        };

        // Finding 3: UDP datagrams waiting in receive queues (on the run's loopback), counted by the kernel in /proc/net/udp.
        yield return new HostileCase("memory-udp-receive-queues", "python", SocketFill("""
            import os, socket
            def fill():
                # Opened first: once every descriptor is a socket, nothing else can be opened.
                stats = open('/proc/net/udp')
                held = []
                try:
                    while True:
                        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        receiver.bind(('127.0.0.1', 0))
                        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        held += [receiver, sender]
                        for _ in range(8):
                            sender.sendto(b'x' * 60000, receiver.getsockname())
                except OSError:
                    pass
                # The queues of this process's own sockets (the file lists the whole namespace's).
                own = {os.fstat(s.fileno()).st_ino for s in held}
                stats.seek(0)
                rows = [line.split() for line in stats.read().splitlines()[1:]]
                queued = sum(int(row[4].split(':')[1], 16) for row in rows if int(row[9]) in own)
                return queued, held
            """))
        {
            Limits = Limits(memoryMb: SocketCaseMemoryMb, wallMs: 30_000),
            Check = (view, _) => QueuedWithinTheMemoryLimit(view),
        };

        yield return new HostileCase("memory-unix-socket-buffers", "python", SocketFill("""
            import socket
            def fill():
                held, queued = [], 0
                while True:
                    try:
                        a, b = socket.socketpair()
                    except OSError:
                        return queued, held
                    held += [a, b]
                    for s in (a, b):
                        s.setblocking(False)
                        while True:
                            try:
                                queued += s.send(b'x' * 65536)
                            except OSError:
                                break
            """))
        {
            Limits = Limits(memoryMb: SocketCaseMemoryMb, wallMs: 30_000),
            Check = (view, _) => QueuedWithinTheMemoryLimit(view),
        };

        yield return new HostileCase("memory-allocation-past-the-limit", "python", "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))")
        {
            Limits = Limits(memoryMb: 64),
            Check = (view, _) => Verdict(view, "memory_limit"),
        };

        yield return new HostileCase("memory-stack-recursion", "c", "int down(int n) { volatile char pad[4096]; pad[0] = (char)n; return down(n + 1) + pad[0]; }\nint main(void) { return down(0); }")
        {
            Check = (view, _) =>
            {
                Verdict(view, "runtime_error", "memory_limit");
                Assert.Contains((string?)view["result"]!["signal"], (string?[])["SIGSEGV", "SIGKILL"]);
            },
        };

        // A program that may lower its OOM score makes the OOM killer look at the runtime process too.
        yield return new HostileCase("memory-many-small-processes-with-lowered-oom-score", "bash", """
            echo 0 > /proc/self/oom_score_adj 2>/dev/null
            for i in $(seq 24); do python3 -c 'import time; x = bytearray(12 << 20); time.sleep(5)' & done
            wait
            """)
        {
            Limits = Limits(memoryMb: 64, wallMs: 20_000),
            Check = (view, _) => Verdict(view, "memory_limit", "runtime_error", "ok"),
        };

        yield return new HostileCase("processes-fork-bomb", "bash", ":(){ :|:& };: \nsleep 2\necho survived")
        {
            Limits = Limits(wallMs: 5_000, processes: 32),
            Check = (view, _) => Verdict(view, "ok", "time_limit", "runtime_error"),
        };

        yield return new HostileCase("processes-thread-bomb", "c", """
            #include <pthread.h>
            #include <stdio.h>
            #include <unistd.h>
            static void *rest(void *arg) { (void)arg; pause(); return NULL; }
            int main(void) {
              int made = 0;
              pthread_t thread;
              while (made < 100000 && pthread_create(&thread, NULL, rest, NULL) == 0) made++;
              printf("threads %d\n", made);
              return 0;
            }
            """)
        {
            Limits = Limits(processes: 32),
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.InRange(int.Parse(view.Report()["threads"], System.Globalization.CultureInfo.InvariantCulture), 1, 32);
            },
        };

        foreach (var (name, folder, cap) in new[] { ("tmp", "/tmp", 8), ("dev-shm", "/dev/shm", 8), ("work", "/work", 8) })
        {
            yield return new HostileCase($"disk-fill-{name}", "python", $$"""
                written = 0
                try:
                    with open('{{folder}}/fill', 'wb') as f:
                        while written < (1 << 30):
                            f.write(b'x' * (1 << 20))
                            f.flush()
                            written += 1 << 20
                except OSError as e:
                    print('stopped', e.errno)
                print('written', written >> 20)
                """)
            {
                Limits = Limits(diskMb: 8, memoryMb: 256),
                Check = (view, _) =>
                {
                    Verdict(view, "ok");
                    var report = view.Report();
                    Assert.True(report.ContainsKey("stopped"), view.ToString());
                    Assert.InRange(int.Parse(report["written"], System.Globalization.CultureInfo.InvariantCulture), 0, cap);
                },
            };
        }

        // Finding 10: /tmp had no inode cap; only memory bounded how many files a run could make.
        yield return new HostileCase("disk-inode-bomb", "python", """
            import os
            for folder in ('/tmp', '/dev/shm', '/work'):
                made, errno = 0, 0
                try:
                    while made < 200000:
                        os.close(os.open(f'{folder}/i{made}', os.O_CREAT | os.O_WRONLY))
                        made += 1
                except OSError as e:
                    errno = e.errno
                print(folder, made, errno)
            """)
        {
            Limits = Limits(memoryMb: 512, wallMs: 30_000, cpuMs: 30_000),
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Equal(3, view.Stdout().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
                foreach (var line in view.Stdout().Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    var parts = line.Split(' ');
                    Assert.True(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) <= 16_384, line);
                    Assert.Equal("28", parts[2]);
                }
            },
        };

        yield return new HostileCase("output-flood-stdout", "c", "#include <stdio.h>\nint main(void) { for (;;) fputs(\"flood flood flood flood\\n\", stdout); }")
        {
            Limits = Limits(outputBytes: 65536),
            Check = (view, _) =>
            {
                Verdict(view, "output_limit");
                Assert.Equal(65536, System.Text.Encoding.UTF8.GetByteCount(view.Stdout()));
                Assert.True((bool?)view["result"]!["stdout_truncated"]);
            },
        };

        yield return new HostileCase("output-flood-stderr-from-many-processes", "bash", "for i in 1 2 3 4; do (yes flood >&2) & done; wait")
        {
            Limits = Limits(outputBytes: 65536),
            Check = (view, _) =>
            {
                Verdict(view, "output_limit");
                Assert.True((bool?)view["result"]!["stderr_truncated"]);
            },
        };

        yield return new HostileCase("output-binary-bytes", "python", "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 64)\nsys.stderr.buffer.write(b'\\xff\\xfe\\x00 end')")
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.EndsWith(" end", view.Stderr(), StringComparison.Ordinal);
            },
        };

        yield return new HostileCase("time-sigterm-ignored", "python", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ignoring', flush=True)\nwhile True:\n    time.sleep(0.1)")
        {
            Limits = Limits(wallMs: 1_000),
            Check = (view, _) =>
            {
                Verdict(view, "time_limit");
                Assert.InRange((long)view["result"]!["wall_time_ms"]!, 1_000, 10_000);
                Printed(view, "ignoring\n");
            },
        };

        yield return new HostileCase("time-cpu-burners-on-every-core", "python", """
            import multiprocessing, threading
            def burn():
                while True:
                    pass
            for _ in range(4):
                multiprocessing.Process(target=burn).start()
            for _ in range(4):
                threading.Thread(target=burn, daemon=True).start()
            burn()
            """)
        {
            Limits = Limits(cpuMs: 1_000, wallMs: 20_000),
            Check = (view, _) =>
            {
                Verdict(view, "time_limit");
                var cpu = (long)view["result"]!["cpu_time_ms"]!;
                var wall = (long)view["result"]!["wall_time_ms"]!;
                // One CPU between all of them (the run's CPU quota).
                Assert.True(cpu <= (wall * 1.3) + 100, $"cpu {cpu} ms in {wall} ms of wall time");
            },
        };

        yield return new HostileCase("processes-daemons-escaping-the-run", "bash", """
            setsid bash -c 'trap "" HUP TERM; sleep 300' </dev/null >/dev/null 2>&1 &
            (nohup sleep 301 </dev/null >/dev/null 2>&1 &)
            python3 -c 'import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(302)' &
            echo started
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.True((long)view["result"]!["wall_time_ms"]! < 10_000, view.ToString());
            },
        };

        yield return new HostileCase("processes-kill-everything-it-can", "bash", "echo before; kill -9 -1; echo after")
        {
            Check = (view, _) => Verdict(view, "runtime_error", "ok"),
        };

        yield return new HostileCase("processes-closed-output-and-lingering-children", "bash", "exec >&- 2>&-; sleep 1 & sleep 2; exit 0")
        {
            Check = (view, _) => Verdict(view, "ok"),
        };
    }

    /// <summary>
    /// Runs <paramref name="fill"/> (a Python <c>fill()</c> returning the bytes it queued and what it holds) in
    /// four processes at once, each with all its descriptors, and prints the sum as "queued_mib N".
    /// </summary>
    private static string SocketFill(string fill) => fill + """

        import os, sys
        pipes = []
        for _ in range(4):
            r, w = os.pipe()
            if os.fork() == 0:
                os.close(r)
                try:
                    queued, held = fill()
                except MemoryError:
                    queued, held = 0, []
                os.write(w, f'{queued}\n'.encode())
                os.close(w)
                import time
                time.sleep(3)
                os._exit(0)
            os.close(w)
            pipes.append(r)
        total = sum(int(os.read(r, 64).decode().strip() or 0) for r in pipes)
        print('queued_mib', total >> 20, flush=True)
        """;

    private static void QueuedWithinTheMemoryLimit(System.Text.Json.Nodes.JsonNode view)
    {
        if (view.Verdict() == "memory_limit")
        {
            return;
        }
        Verdict(view, "ok");
        var queued = int.Parse(view.Report()["queued_mib"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(queued <= SocketCaseMemoryMb, $"a {SocketCaseMemoryMb} MiB run queued {queued} MiB in socket buffers");
    }
}
