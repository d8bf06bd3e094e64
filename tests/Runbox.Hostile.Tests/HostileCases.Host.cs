namespace Runbox.Hostile.Tests;

/// <summary>The host's files, environment, /proc and /sys: security review findings 7 and 9.</summary>
public static partial class HostileCases
{
    private static IEnumerable<HostileCase> Host()
    {
        // Exactly the environment the bundle gives, in the program and in its init: nothing of the service's.
        yield return new HostileCase("host-environment-is-only-the-sandboxes", "bash", """
            env | grep -v '^_=' | grep -v '^SHLVL=' | grep -v '^PWD=' | grep -v '^OLDPWD=' | sort
            tr '\0' '\n' < /proc/1/environ | sort | sed 's/^/init /'
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                var lines = view.Stdout().Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.All(lines, line => Assert.Matches("^(init )?(PATH|HOME|LANG|TMPDIR|USER|LOGNAME)=", line));
            },
        };

        yield return new HostileCase("host-files-out-of-reach", "bash", """
            for path in /etc/shadow /root /home /var /run /srv {DATA} /proc/1/root/etc/shadow /boot /lib/modules; do
              if ls "$path" >/dev/null 2>&1 || cat "$path" >/dev/null 2>&1; then echo "reachable $path"; else echo "denied $path"; fi
            done
            ls /etc | sort | tr '\n' ' '; echo
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.DoesNotContain("reachable", view.Stdout(), StringComparison.Ordinal);
                // Only what the rootfs has of its own, and the binds languages need.
                var etc = view.Stdout().Split('\n')[^2].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                Assert.DoesNotContain("ssh", etc);
                Assert.DoesNotContain("shadow", etc);
                Assert.DoesNotContain("resolv.conf", etc);
            },
        };

        // Finding 7: mountinfo named the host folder of the sandbox's root (and so the data folder).
        yield return new HostileCase("host-paths-not-visible-in-mountinfo", "bash", "cat /proc/self/mountinfo; cat /proc/self/cgroup; readlink /proc/self/cwd")
        {
            Check = (view, server) =>
            {
                Verdict(view, "ok");
                Assert.DoesNotContain(server.DataDirectory, view.Stdout(), StringComparison.Ordinal);
                Assert.DoesNotContain("/sandbox/", view.Stdout(), StringComparison.Ordinal);
                Assert.DoesNotContain("/tmp/runbox", view.Stdout(), StringComparison.Ordinal);
            },
        };

        // Finding 7: /sys was mounted (host hardware, kernel detail), /proc/interrupts and others unmasked.
        yield return new HostileCase("host-sys-and-proc-details-hidden", "bash", """
            if [ -e /sys/kernel ] || [ -e /sys/devices ] || [ -e /sys/class/net ]; then echo "sys visible"; else echo "sys absent"; fi
            for f in /proc/interrupts /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do
              if [ -s "$f" ] && head -c 1 "$f" >/dev/null 2>&1 && [ -n "$(head -c 16 "$f" 2>/dev/null)" ]; then echo "readable $f"; else echo "masked $f"; fi
            done
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "sys absent\nmasked /proc/interrupts\nmasked /proc/kcore\nmasked /proc/keys\nmasked /proc/timer_list\nmasked /proc/sched_debug\nmasked /proc/latency_stats\n");
            },
        };

        yield return new HostileCase("host-proc-and-sys-writes-refused", "bash", """
            for path in /proc/sys/kernel/hostname /proc/sys/vm/drop_caches /proc/sysrq-trigger /proc/sys/net/ipv4/ip_forward /sys/kernel/mm/transparent_hugepage/enabled /usr/bin/x /etc/passwd; do
              if (echo 1 > "$path") 2>/dev/null; then echo "wrote $path"; else echo "denied $path"; fi
            done
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.DoesNotContain("wrote", view.Stdout(), StringComparison.Ordinal);
            },
        };

        // Finding 9: rlimits were inherited from the service; they are the sandbox's own now.
        yield return new HostileCase("host-rlimits-are-explicit", "python", """
            import resource as r
            for name in ('RLIMIT_NOFILE', 'RLIMIT_MEMLOCK', 'RLIMIT_MSGQUEUE', 'RLIMIT_SIGPENDING', 'RLIMIT_STACK', 'RLIMIT_NPROC', 'RLIMIT_CORE', 'RLIMIT_NICE', 'RLIMIT_RTPRIO'):
                soft, hard = r.getrlimit(getattr(r, name))
                print(name, soft, hard)
            """)
        {
            Limits = Limits(memoryMb: 256, processes: 64),
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                var report = view.Report();
                Assert.Equal("64 64", report["RLIMIT_NOFILE"]);
                Assert.Equal("65536 65536", report["RLIMIT_MEMLOCK"]);
                Assert.Equal("262144 262144", report["RLIMIT_MSGQUEUE"]);
                Assert.Equal("1024 1024", report["RLIMIT_SIGPENDING"]);
                Assert.Equal($"{8 << 20} {256 << 20}", report["RLIMIT_STACK"]);
                Assert.Equal("0 0", report["RLIMIT_CORE"]);
                Assert.Equal("0 0", report["RLIMIT_NICE"]);
                Assert.Equal("0 0", report["RLIMIT_RTPRIO"]);
                Assert.StartsWith("6", report["RLIMIT_NPROC"], StringComparison.Ordinal);
            },
        };

        // Finding 10: read-only binds were not recursive (a host mount below /usr stayed writable).
        yield return new HostileCase("host-mounts-read-only-all-the-way-down", "bash", """
            awk '$5 ~ "^/usr" || $5 ~ "^/etc" { split($6, o, ","); print $5, o[1] }' /proc/self/mountinfo | sort -u
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                var lines = view.Stdout().Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.All(lines.Where(l => l.StartsWith("/usr", StringComparison.Ordinal) || l.StartsWith("/etc", StringComparison.Ordinal)), l => Assert.EndsWith(" ro", l, StringComparison.Ordinal));
            },
        };
    }
}
