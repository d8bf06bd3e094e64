namespace Runbox.Hostile.Tests;

/// <summary>Identity, capabilities, setuid binaries, dangerous system calls and namespaces: finding 5 and the rest of section 1.</summary>
public static partial class HostileCases
{
    private static IEnumerable<HostileCase> Privileges()
    {
        // Finding 5: every run was host uid 1000, which can be a real account.
        yield return new HostileCase("identity-a-uid-no-host-account-has", "bash", """
            echo "uid $(id -u) gid $(id -g) groups $(id -G | wc -w)"
            grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/ /'
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                var report = view.Report();
                var ids = report["uid"].Split(' ');
                var uid = long.Parse(ids[0], System.Globalization.CultureInfo.InvariantCulture);
                Assert.InRange(uid, 0x70000000L, 0x7fffffffL);
                Assert.Equal(ids[0], ids[2]);
                Assert.Equal("1", ids[4]);
                Assert.DoesNotContain(File.ReadAllLines("/etc/passwd"), line => line.Split(':')[2] == ids[0]);
                foreach (var set in (string[])["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"])
                {
                    Assert.Equal("0000000000000000", report[set]);
                }
                Assert.Equal("1", report["NoNewPrivs"]);
                Assert.Equal("2", report["Seccomp"]);
            },
        };

        yield return new HostileCase("privileges-setuid-binaries-and-setuid-calls", "python", """
            import os, subprocess
            print('su', subprocess.run(['/usr/bin/su', '-c', 'id -u', 'root'], stdin=subprocess.DEVNULL, capture_output=True).returncode != 0)
            for name, call in (('setuid', lambda: os.setuid(0)), ('setgid', lambda: os.setgid(0)), ('setgroups', lambda: os.setgroups([0])), ('chown', lambda: os.chown('main.py', 0, 0))):
                try:
                    call()
                    print(name, 'ALLOWED')
                except OSError as e:
                    print(name, e.errno)
            print('euid', os.geteuid() != 0)
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "su True\nsetuid 1\nsetgid 1\nsetgroups 1\nchown 1\neuid True\n");
            },
        };

        yield return new HostileCase("privileges-dangerous-system-calls", "c", """
            #define _GNU_SOURCE
            #include <errno.h>
            #include <stdio.h>
            #include <sys/syscall.h>
            #include <unistd.h>
            static void try(const char *name, long rc) { printf("%s %s %d\n", name, rc < 0 ? "refused" : "ALLOWED", rc < 0 ? errno : 0); }
            int main(void) {
              try("ptrace", syscall(SYS_ptrace, 16L, 1L, 0L, 0L));
              try("bpf", syscall(SYS_bpf, 0L, 0L, 0L));
              try("keyctl", syscall(SYS_keyctl, 0L, 0L, 0L, 0L, 0L));
              try("add_key", syscall(SYS_add_key, "user", "k", "v", 1L, -1L));
              try("unshare-user", syscall(SYS_unshare, 0x10000000L));
              try("unshare-net", syscall(SYS_unshare, 0x40000000L));
              try("setns", syscall(SYS_setns, 0L, 0L));
              try("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0L, 0L));
              try("perf_event_open", syscall(SYS_perf_event_open, 0L, 0L, -1L, -1L, 0L));
              try("userfaultfd", syscall(SYS_userfaultfd, 0L));
              try("io_uring_setup", syscall(SYS_io_uring_setup, 1L, 0L));
              try("init_module", syscall(SYS_init_module, 0L, 0L, ""));
              try("kexec_load", syscall(SYS_kexec_load, 0L, 0L, 0L, 0L));
              try("open_by_handle_at", syscall(SYS_open_by_handle_at, -1L, 0L, 0L));
              try("process_vm_readv", syscall(SYS_process_vm_readv, 1L, 0L, 0L, 0L, 0L, 0L));
              try("mknod", syscall(SYS_mknod, "/tmp/dev", 0020644L, 0x103L));
              try("clone-newuser", syscall(SYS_clone, 0x10000000L | 17L, 0L, 0L, 0L, 0L));
              try("clone3", syscall(SYS_clone3, 0L, 0L));
              try("chroot", syscall(SYS_chroot, "/tmp"));
              try("reboot", syscall(SYS_reboot, 0L, 0L, 0L, 0L));
              return 0;
            }
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.DoesNotContain("ALLOWED", view.Stdout(), StringComparison.Ordinal);
                Assert.Equal(20, view.Stdout().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            },
        };

        // The 32-bit entry point would see other syscall numbers and no argument filters: it kills the program.
        yield return new HostileCase("privileges-32-bit-entry-point", "c", """
            #include <stdio.h>
            int main(void) {
              printf("before\n");
              fflush(stdout);
              long rc;
              __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L));
              printf("after %ld\n", rc);
              return 0;
            }
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "runtime_error");
                Assert.Equal("SIGSYS", (string?)view["result"]!["signal"]);
                Printed(view, "before\n");
            },
        };

        yield return new HostileCase("privileges-new-namespaces-from-the-shell", "bash", """
            unshare -U true 2>/dev/null && echo "user namespace made" || echo "no user namespace"
            unshare -n true 2>/dev/null && echo "net namespace made" || echo "no net namespace"
            nsenter -t 1 -m true 2>/dev/null && echo "entered" || echo "no nsenter"
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "no user namespace\nno net namespace\nno nsenter\n");
            },
        };

        // tini is PID 1 of the run's own pid namespace; nothing of the host's process tree is visible.
        yield return new HostileCase("privileges-only-the-runs-own-processes", "javascript", """
            const fs = require('fs');
            const pids = fs.readdirSync('/proc').filter(n => /^\d+$/.test(n));
            const comms = pids.map(p => { try { return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim(); } catch { return '?'; } });
            console.log('processes', [...new Set(comms)].sort().join(','));
            try { process.kill(1, 'SIGKILL'); console.log('killed init'); } catch (e) { console.log('kill init', e.code); }
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                var processes = view.Report()["processes"].Split(',');
                Assert.All(processes, p => Assert.Contains(p, (string[])["tini-static", "tini", "node", "?"]));
            },
        };
    }
}
