namespace Runbox.Hostile.Tests;

/// <summary>/work/out, which the service reads back as root after the run: security review finding 1 and 6.</summary>
public static partial class HostileCases
{
    private static IEnumerable<HostileCase> Artifacts()
    {
        foreach (var (name, target) in new[] { ("proc-self", "/proc/self"), ("etc", "/etc"), ("proc-1", "/proc/1"), ("dev", "/dev"), ("root", "/") })
        {
            yield return new HostileCase($"artifacts-out-linked-to-{name}", "bash", $"rm -rf out && ln -s {target} out && echo linked")
            {
                Check = (view, _) =>
                {
                    Verdict(view, "ok");
                    Assert.Empty(view.ArtifactNames());
                    Assert.Contains("out is not a folder", view.Error(), StringComparison.Ordinal);
                },
            };
        }

        // The folder the service keeps its data in, as /proc/self/mountinfo gave it away (finding 7): the
        // link goes to wherever the sandbox's own root comes from, and to the data folder itself.
        yield return new HostileCase("artifacts-out-linked-to-the-data-folder", "bash", """
            root=$(awk '$5 == "/" { print $4 }' /proc/self/mountinfo)
            rm -rf out && ln -s "$(dirname "$root")" out
            mkdir -p more && ln -s "{DATA}" more/data
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Empty(view.ArtifactNames());
            },
        };

        yield return new HostileCase("artifacts-out-removed", "python", "import shutil\nshutil.rmtree('out')\nprint('removed')")
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Empty(view.ArtifactNames());
                Assert.Contains("no out folder", view.Error(), StringComparison.Ordinal);
            },
        };

        yield return new HostileCase("artifacts-out-replaced-by-a-file", "bash", "rm -rf out && echo not-a-folder > out")
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Empty(view.ArtifactNames());
            },
        };

        yield return new HostileCase("artifacts-names-that-are-not-utf8", "python", """
            import os
            os.mkdir(b'out/bad\xffdir')
            open(b'out/bad\xffdir/inner.txt', 'w').write('x')
            open(b'out/bad\xfename', 'w').write('y')
            open('out/line\nbreak', 'w').write('z')
            open('out/good.txt', 'w').write('good')
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Equal(["good.txt"], view.ArtifactNames());
                Assert.Contains("not UTF-8", view.Error(), StringComparison.Ordinal);
            },
        };

        // One process making the 300 folders (a shell started 300 mkdir processes, which on a loaded host ran past the
        // wall limit with under a second of CPU time).
        yield return new HostileCase("artifacts-tree-deeper-than-path-max", "python", """
            import os
            open('out/top.txt', 'w').write('top')
            os.chdir('out')
            for _ in range(300):
                os.mkdir('a' * 20)
                os.chdir('a' * 20)
            open('deep.txt', 'w').write('deep')
            print('built')
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Assert.Equal(["top.txt"], view.ArtifactNames());
            },
        };

        yield return new HostileCase("artifacts-many-files-and-one-too-big", "python", """
            for i in range(5000):
                open(f'out/f{i:05}.txt', 'w').write('small')
            with open('out/a-big.bin', 'wb') as f:
                f.truncate(30 << 20)
            print('written')
            """)
        {
            Limits = Limits(diskMb: 64),
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                var names = view.ArtifactNames();
                Assert.Equal(16, names.Count);
                Assert.DoesNotContain("a-big.bin", names);
                Assert.Equal("f00000.txt", names[0]);
            },
        };

        // mknod is refused, so a FIFO cannot be made; a socket file can, and must be skipped, not opened.
        yield return new HostileCase("artifacts-fifo-socket-and-links-inside-out", "python", """
            import os, socket
            try:
                os.mkfifo('out/fifo')
                print('fifo made')
            except OSError as e:
                print('fifo', e.errno)
            s = socket.socket(socket.AF_UNIX)
            s.bind('out/socket')
            os.symlink('/etc/shadow', 'out/shadow')
            os.symlink('/proc/self/environ', 'out/environ')
            os.symlink('/etc', 'out/etc')
            try:
                os.link('/etc/passwd', 'out/passwd')
            except OSError as e:
                print('hardlink', e.errno)
            open('out/real.txt', 'w').write('real')
            """)
        {
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "fifo 1\nhardlink 18\n");
                Assert.Equal(["real.txt"], view.ArtifactNames());
            },
        };

        // Finding 5 and 11: files in folders were accepted by the API and refused by the sandbox.
        yield return new HostileCase("files-in-folders", "python", "from pkg import util\nfrom pkg.sub import deep\nprint(util.X + deep.Y)")
        {
            Files =
            [
                new { name = "pkg/__init__.py", content = "" },
                new { name = "pkg/util.py", content = "X = 40" },
                new { name = "pkg/sub/__init__.py", content = "" },
                new { name = "pkg/sub/deep.py", content = "Y = 2" },
            ],
            Check = (view, _) =>
            {
                Verdict(view, "ok");
                Printed(view, "42\n");
            },
        };
    }
}
