using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Runbox.Sandbox.Bundle;

/// <summary>
/// The seccomp profile of every container: the allowlist in Bundle/seccomp.json, plus the rules on the
/// arguments of the socket calls, which are made here because they are long and each needs its reason.
/// </summary>
/// <remarks>
/// <para>
/// "No network" means no channel at all, and an empty network namespace only covers the families the
/// kernel namespaces: a program may create sockets of the families a judged program needs (AF_UNIX,
/// AF_INET, AF_INET6, which reach nothing but the container's own loopback) and no other. AF_VSOCK
/// reaches the hypervisor and every vsock listener of a VM whatever the namespace, AF_NETLINK talks to
/// the kernel (uevents are host-wide), AF_ALG and AF_PACKET and the rest are kernel attack surface.
/// glibc copes without netlink (getaddrinfo assumes both IPv4 and IPv6 when it cannot ask).
/// </para>
/// <para>
/// Socket buffers beyond the defaults cannot be asked for: SO_SNDBUF, SO_RCVBUF and their FORCE variants
/// fail with EPERM, so a socket keeps the kernel's default buffer (and the run's memory accounting,
/// Cgroups/Cgroupfs.cs, bounds the sum). Of the SOL_SOCKET options only the ordinary ones are allowed; the
/// socket filters (SO_ATTACH_FILTER, SO_ATTACH_BPF) and the rest fail.
/// </para>
/// <para>
/// Every rule compares whole 64-bit arguments and the rules of one call never overlap: libseccomp leaves
/// the outcome of overlapping rules with different actions undefined. The kernel reads these arguments
/// as 32-bit ints, so a value with high bits set is never allowed (it matches no allow rule, only an
/// error rule or the default). Only x86-64 calls are allowed at all (seccomp.json), so the 32-bit
/// <c>socketcall</c> cannot go around these rules.
/// </para>
/// </remarks>
internal static class SeccompProfile
{
    public const int Eperm = 1;
    public const int Eafnosupport = 97;

    private const int AfUnix = 1;
    private const int AfInet = 2;
    private const int AfInet6 = 10;

    private const int SolSocket = 1;

    /// <summary>Option levels passed through whole: IP, TCP, UDP, IPv6, ICMPv6 (all inside the empty namespace).</summary>
    private static readonly int[] PlainLevels = [0, 6, 17, 41, 58];

    /// <summary>
    /// SOL_SOCKET options a program may set: SO_DEBUG, SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE,
    /// SO_OOBINLINE, SO_PRIORITY, SO_LINGER, SO_REUSEPORT, SO_PASSCRED, SO_RCVLOWAT, SO_SNDLOWAT, SO_RCVTIMEO and
    /// SO_SNDTIMEO (old and new), SO_TIMESTAMP, SO_TIMESTAMPNS, SO_PEEK_OFF.
    /// </summary>
    private static readonly int[] SocketOptions = [1, 2, 5, 6, 9, 10, 12, 13, 15, 16, 18, 19, 20, 21, 29, 35, 42, 66, 67];

    /// <summary>SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE: refused with EPERM, not just unknown.</summary>
    private static readonly int[] BufferOptions = [7, 8, 32, 33];

    /// <summary>The whole profile in OCI form, minified, so runc's per-run config stays small.</summary>
    public static byte[] Json { get; } = Build();

    private static byte[] Build()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Runbox.Sandbox.seccomp.json")
            ?? throw new InvalidOperationException("seccomp.json resource missing");
        var profile = JsonNode.Parse(stream)!.AsObject();
        var rules = profile["syscalls"]!.AsArray();
        foreach (var rule in SocketRules())
        {
            rules.Add(rule);
        }
        return JsonSerializer.SerializeToUtf8Bytes(profile);
    }

    private static IEnumerable<JsonObject> SocketRules()
    {
        // socket(family, ...): the three families, or EAFNOSUPPORT for every other value of the argument.
        foreach (var family in (int[])[AfUnix, AfInet, AfInet6])
        {
            yield return Rule("socket", Allow, (0, "SCMP_CMP_EQ", family));
        }
        foreach (var family in (int[])[0, 3, 4, 5, 6, 7, 8, 9])
        {
            yield return Rule("socket", Errno(Eafnosupport), (0, "SCMP_CMP_EQ", family));
        }
        yield return Rule("socket", Errno(Eafnosupport), (0, "SCMP_CMP_GE", AfInet6 + 1));

        // socketpair(family, ...): AF_UNIX only.
        yield return Rule("socketpair", Allow, (0, "SCMP_CMP_EQ", AfUnix));
        yield return Rule("socketpair", Errno(Eafnosupport), (0, "SCMP_CMP_EQ", 0));
        yield return Rule("socketpair", Errno(Eafnosupport), (0, "SCMP_CMP_GE", AfUnix + 1));

        // setsockopt(fd, level, name, ...): the plain levels whole, SOL_SOCKET by option; anything else takes
        // the profile's default (ENOSYS).
        foreach (var level in PlainLevels)
        {
            yield return Rule("setsockopt", Allow, (1, "SCMP_CMP_EQ", level));
        }
        foreach (var option in SocketOptions)
        {
            yield return Rule("setsockopt", Allow, (1, "SCMP_CMP_EQ", SolSocket), (2, "SCMP_CMP_EQ", option));
        }
        foreach (var option in BufferOptions)
        {
            yield return Rule("setsockopt", Errno(Eperm), (1, "SCMP_CMP_EQ", SolSocket), (2, "SCMP_CMP_EQ", option));
        }
    }

    private static (string Action, int? Errno) Allow => ("SCMP_ACT_ALLOW", null);

    private static (string Action, int? Errno) Errno(int errno) => ("SCMP_ACT_ERRNO", errno);

    private static JsonObject Rule(string name, (string Action, int? Errno) action, params (int Index, string Op, long Value)[] args)
    {
        var rule = new JsonObject { ["names"] = new JsonArray(name), ["action"] = action.Action };
        if (action.Errno is { } errno)
        {
            rule["errnoRet"] = errno;
        }
        rule["args"] = new JsonArray([.. args.Select(a => (JsonNode)new JsonObject { ["index"] = a.Index, ["value"] = a.Value, ["op"] = a.Op })]);
        return rule;
    }
}
