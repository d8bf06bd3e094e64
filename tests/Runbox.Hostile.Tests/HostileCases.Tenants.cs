namespace Runbox.Hostile.Tests;

/// <summary>
/// Two users' tasks running at the same time, one holding what it can and leaving traces everywhere a
/// program can write, the other looking for them and for a share of what the first exhausted (finding 5:
/// one uid for every run let one tenant use up per-user kernel limits for all).
/// </summary>
public static partial class HostileCases
{
    private static IEnumerable<HostileCase> Tenants()
    {
        yield return new HostileCase("tenants-alice-holds-and-leaves-traces", "python", """
            import ctypes, os, socket, time
            libc = ctypes.CDLL(None, use_errno=True)
            open('/tmp/alice-secret', 'w').write('alice')
            open('/dev/shm/alice-secret', 'w').write('alice')
            listener = socket.socket(socket.AF_UNIX)
            listener.bind('\0runbox-alice')
            listener.listen(1)
            shm = libc.shmget(0x5eed, 4096, 0o1666)
            print('shm', shm >= 0)
            # Every inotify instance this uid may have, over several processes (each has few descriptors).
            held = 0
            for _ in range(4):
                r, w = os.pipe()
                if os.fork() == 0:
                    count = 0
                    while libc.inotify_init() >= 0:
                        count += 1
                    os.write(w, f'{count}\n'.encode())
                    time.sleep(8)
                    os._exit(0)
                os.close(w)
                held += int(os.read(r, 32))
            print('inotify_held', held, flush=True)
            time.sleep(8)
            """)
        {
            User = HostileServer.Alice,
            Urgent = true,
            Limits = Limits(wallMs: 30_000),
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.True(int.Parse(view.Report()["inotify_held"], System.Globalization.CultureInfo.InvariantCulture) > 0, view.ToString());
            },
        };

        yield return new HostileCase("tenants-bob-looks-for-alice", "python", """
            import ctypes, os, socket, time
            libc = ctypes.CDLL(None, use_errno=True)
            time.sleep(4)
            fd = libc.inotify_init()
            print('inotify', 'ok' if fd >= 0 else ctypes.get_errno())
            for path in ('/tmp/alice-secret', '/dev/shm/alice-secret'):
                print('file', os.path.exists(path))
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect('\0runbox-alice')
                print('abstract connected')
            except OSError as e:
                print('abstract', e.errno)
            print('shm', libc.shmget(0x5eed, 4096, 0o666) >= 0)
            print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:1])
            """)
        {
            User = HostileServer.Bob,
            Urgent = true,
            Limits = Limits(wallMs: 30_000),
            Check = (view, server) =>
            {
                Verdict(view, "ok");
                Printed(view, "inotify ok\nfile False\nfile False\nabstract 111\nshm False\npids [1]\n");
            },
        };

        // A run cannot take more than its CPU quota however many cores it burns, so it cannot starve the others.
        yield return new HostileCase("tenants-cpu-quota-holds", "c", """
            #include <pthread.h>
            #include <stdio.h>
            #include <time.h>
            static void *spin(void *arg) { (void)arg; for (;;) { } return NULL; }
            static double now(clockid_t clock) { struct timespec t; clock_gettime(clock, &t); return t.tv_sec + t.tv_nsec / 1e9; }
            int main(void) {
              pthread_t threads[8];
              double wall = now(CLOCK_MONOTONIC), cpu = now(CLOCK_PROCESS_CPUTIME_ID);
              for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, spin, NULL);
              struct timespec pause = { 2, 0 };
              nanosleep(&pause, NULL);
              printf("ratio %.2f\n", (now(CLOCK_PROCESS_CPUTIME_ID) - cpu) / (now(CLOCK_MONOTONIC) - wall));
              return 0;
            }
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.True(double.Parse(view.Report()["ratio"], System.Globalization.CultureInfo.InvariantCulture) < 1.25, view.ToString());
            },
        };
    }
}
