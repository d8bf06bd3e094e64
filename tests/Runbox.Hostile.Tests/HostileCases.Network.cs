namespace Runbox.Hostile.Tests;

/// <summary>"No network" means no channel at all: security review finding 2.</summary>
public static partial class HostileCases
{
    private static IEnumerable<HostileCase> Network()
    {
        yield return new HostileCase("network-egress-dns-and-ipv6", "python", """
            import socket
            for family, host, port in ((socket.AF_INET, '1.1.1.1', 53), (socket.AF_INET, '10.0.0.1', 80), (socket.AF_INET6, '2606:4700:4700::1111', 53)):
                s = socket.socket(family, socket.SOCK_STREAM)
                s.settimeout(2)
                try:
                    s.connect((host, port))
                    print('connected', host)
                except OSError as e:
                    print('unreachable', e.errno)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.sendto(b'x', ('8.8.8.8', 53))
                print('udp sent')
            except OSError as e:
                print('udp', e.errno)
            try:
                socket.getaddrinfo('example.com', 80)
                print('resolved')
            except socket.gaierror:
                print('no dns')
            print(open('/proc/net/dev').read().count(':'), 'interfaces')
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "unreachable 101\nunreachable 101\nunreachable 101\nudp 101\nno dns\n1 interfaces\n");
            },
        };

        // Each family a program might use to reach past the empty network namespace, by raw syscall so no
        // library stands in between. 0x100000028 is AF_VSOCK with high bits set: the kernel reads an int.
        yield return new HostileCase("network-socket-families", "c", """
            #include <errno.h>
            #include <stdio.h>
            #include <sys/syscall.h>
            #include <unistd.h>
            static void try(const char *name, long family, long type, long protocol) {
              long fd = syscall(SYS_socket, family, type, protocol);
              if (fd >= 0) printf("%s created\n", name); else printf("%s %d\n", name, errno);
            }
            int main(void) {
              try("unix", 1, 1, 0);
              try("inet", 2, 1, 0);
              try("inet6", 10, 1, 0);
              try("netlink-route", 16, 3, 0);
              try("netlink-uevent", 16, 2, 15);
              try("packet", 17, 3, 0);
              try("vsock", 40, 1, 0);
              try("vsock-high-bits", 0x100000028L, 1, 0);
              try("alg", 38, 5, 0);
              try("bluetooth", 31, 1, 0);
              try("raw-inet", 2, 3, 1);
              int sv[2];
              printf("socketpair-inet %d\n", syscall(SYS_socketpair, 2L, 1L, 0L, sv) == 0 ? 0 : errno);
              printf("socketpair-unix %d\n", syscall(SYS_socketpair, 1L, 1L, 0L, sv) == 0 ? 0 : errno);
              return 0;
            }
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, """
                    unix created
                    inet created
                    inet6 created
                    netlink-route 97
                    netlink-uevent 97
                    packet 97
                    vsock 97
                    vsock-high-bits 97
                    alg 97
                    bluetooth 97
                    raw-inet 1
                    socketpair-inet 97
                    socketpair-unix 0

                    """.Replace("\r", "", StringComparison.Ordinal));
            },
        };

        yield return new HostileCase("network-socket-buffers-cannot-grow", "python", """
            import socket
            s = socket.socket()
            for name in ('SO_SNDBUF', 'SO_RCVBUF'):
                try:
                    s.setsockopt(socket.SOL_SOCKET, getattr(socket, name), 64 << 20)
                    print(name, 'set', s.getsockopt(socket.SOL_SOCKET, getattr(socket, name)))
                except OSError as e:
                    print(name, e.errno)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            print('ordinary options set')
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "SO_SNDBUF 1\nSO_RCVBUF 1\nordinary options set\n");
            },
        };

        // Abstract unix sockets live in the network namespace: the host's (systemd's, X11's) are not there.
        yield return new HostileCase("network-abstract-unix-sockets-of-the-host", "python", """
            import socket
            names = [l.split()[-1] for l in open('/proc/net/unix').read().splitlines()[1:] if l.split()[-1].startswith('@')]
            print('abstract sockets seen', len(names))
            for name in ('/tmp/.X11-unix/X0', '/org/freedesktop/systemd1/notify', 'runbox-probe'):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect('\0' + name)
                    print('connected', name)
                except OSError as e:
                    print('refused', e.errno)
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "abstract sockets seen 0\nrefused 111\nrefused 111\nrefused 111\n");
            },
        };

        yield return new HostileCase("network-loopback-is-the-runs-own", "javascript", """
            const net = require('net');
            const server = net.createServer(c => c.end('pong')).listen(8080, '127.0.0.1', () => {
              net.connect(8080, '127.0.0.1').on('data', d => { console.log('loopback', d.toString()); server.close(); })
                .on('error', e => { console.log('error', e.code); server.close(); });
            });
            const outside = net.connect({ host: '1.1.1.1', port: 80, timeout: 2000 });
            outside.on('connect', () => console.log('outside reached')).on('error', e => console.log('outside', e.code));
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Contains("loopback pong", view.Stdout(), StringComparison.Ordinal);
                Assert.Contains("outside ENETUNREACH", view.Stdout(), StringComparison.Ordinal);
            },
        };

        yield return new HostileCase("network-java-sockets-and-dns", "java", """
            import java.net.*;
            public class Main {
                public static void main(String[] a) {
                    try (Socket s = new Socket()) { s.connect(new InetSocketAddress("1.1.1.1", 443), 2000); System.out.println("connected"); }
                    catch (Exception e) { System.out.println("connect " + e.getClass().getSimpleName()); }
                    try { InetAddress.getByName("example.com"); System.out.println("resolved"); }
                    catch (Exception e) { System.out.println("dns " + e.getClass().getSimpleName()); }
                }
            }
            """)
        {
            Limits = Limits(wallMs: 30_000, cpuMs: 20_000),
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Equal("dns UnknownHostException", view.Stdout().Split('\n')[1]);
                Assert.StartsWith("connect ", view.Stdout(), StringComparison.Ordinal);
                Assert.DoesNotContain("connected", view.Stdout(), StringComparison.Ordinal);
            },
        };
    }
}
