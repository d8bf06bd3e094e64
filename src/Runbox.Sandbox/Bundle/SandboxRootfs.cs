using System.Globalization;
using System.Text;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Bundle;

/// <summary>
/// The shared read-only root filesystem of every container: an almost empty directory whose
/// mountpoints receive read-only binds of the host's /usr and the few /etc entries languages need.
/// Prepared once per service start, never copied per run. It lives on the sandbox's live tmpfs (mode
/// 0700, see LiveFolder), not on the host's disk: a program reading its /proc/self/mountinfo sees
/// <c>/rootfs</c> of a tmpfs as the source of its root, not a host path that would lead to the data folder,
/// and no local user of the host can reach its world-writable /tmp.
/// </summary>
internal sealed class SandboxRootfs
{
    /// <summary>Host paths bound read-only when they exist: toolchains live in /usr; cc, java and javac
    /// resolve through /etc/alternatives; the JDK's conf files link into /etc/java-*.</summary>
    private static readonly string[] HostBindCandidates = ["/usr", "/etc/alternatives", "/etc/ld.so.cache"];

    /// <summary>Top-level entries that are symlinks into /usr on usr-merged hosts, real directories elsewhere.</summary>
    private static readonly string[] MergedTopLevel = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

    private SandboxRootfs(string path, IReadOnlyList<string> hostBinds)
    {
        Path = path;
        HostBinds = hostBinds;
    }

    public string Path { get; }

    /// <summary>Absolute host paths to bind read-only at the same place in the container.</summary>
    public IReadOnlyList<string> HostBinds { get; }

    /// <summary>Prepares <c>rootfs/</c> in <paramref name="folder"/>, with a passwd entry for every uid of <paramref name="uids"/>.</summary>
    public static SandboxRootfs Prepare(string folder, IEnumerable<int> uids)
    {
        var binds = HostBindCandidates.Where(Exists).ToList();
        binds.AddRange(Directory.Exists("/etc") ? Directory.EnumerateDirectories("/etc", "java-*").Order(StringComparer.Ordinal) : []);

        var symlinks = new List<(string Name, string Target)>();
        foreach (var name in MergedTopLevel)
        {
            var host = new FileInfo("/" + name);
            if (host.LinkTarget is { } target)
            {
                symlinks.Add((name, target.TrimStart('/')));
            }
            else if (Directory.Exists(host.FullName))
            {
                binds.Add(host.FullName);
            }
        }

        var final = System.IO.Path.Combine(folder, "rootfs");
        var staging = final + ".new";
        DeleteTree(staging);
        Directory.CreateDirectory(staging);
        foreach (var dir in (string[])["proc", "dev", "work", "tmp", "etc"])
        {
            Directory.CreateDirectory(System.IO.Path.Combine(staging, dir));
        }
        // runc gives a tmpfs the mode of its mountpoint, so /tmp must already be world-writable and sticky.
        File.SetUnixFileMode(System.IO.Path.Combine(staging, "tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));
        foreach (var bind in binds)
        {
            var mountpoint = System.IO.Path.Combine(staging, bind.TrimStart('/'));
            if (Directory.Exists(bind))
            {
                Directory.CreateDirectory(mountpoint);
            }
            else
            {
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(mountpoint)!);
                File.WriteAllBytes(mountpoint, []);
            }
        }
        foreach (var (name, target) in symlinks)
        {
            File.CreateSymbolicLink(System.IO.Path.Combine(staging, name), target);
        }
        WriteEtc(staging, uids);

        DeleteTree(final);
        Directory.Move(staging, final);
        return new SandboxRootfs(final, binds);
    }

    /// <summary>
    /// Every uid a run may have is "sandbox", in the order they are handed out (lowest first), so a lookup
    /// of a run's own uid reads a few lines.
    /// </summary>
    private static void WriteEtc(string root, IEnumerable<int> uids)
    {
        var etc = System.IO.Path.Combine(root, "etc");
        var passwd = new StringBuilder("root:x:0:0:root:/root:/usr/sbin/nologin\n");
        var group = new StringBuilder("root:x:0:\n");
        foreach (var uid in uids)
        {
            var id = uid.ToString(CultureInfo.InvariantCulture);
            passwd.Append("sandbox:x:").Append(id).Append(':').Append(id).Append(":sandbox:/work:/usr/sbin/nologin\n");
            group.Append("sandbox:x:").Append(id).Append(":\n");
        }
        passwd.Append("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        group.Append("nogroup:x:65534:\n");
        File.WriteAllText(System.IO.Path.Combine(etc, "passwd"), passwd.ToString(), Encoding.ASCII);
        File.WriteAllText(System.IO.Path.Combine(etc, "group"), group.ToString(), Encoding.ASCII);
        File.WriteAllText(System.IO.Path.Combine(etc, "hosts"), "127.0.0.1 localhost\n::1 localhost\n", Encoding.ASCII);
        File.WriteAllText(System.IO.Path.Combine(etc, "hostname"), "sandbox\n", Encoding.ASCII);
        File.WriteAllText(System.IO.Path.Combine(etc, "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n", Encoding.ASCII);
    }

    private static bool Exists(string path) => Directory.Exists(path) || File.Exists(path);

    /// <summary>Deletes a rootfs tree without following its symlinks (they point at host paths) or entering a mount.</summary>
    public static void DeleteTree(string path) => ConfinedFolder.RemoveTree(path);
}
