using System.Globalization;
using System.Text.Json;

namespace Runbox.Sandbox.Bundle;

/// <summary>What differs between two containers: the command, its limits and its /work.</summary>
internal sealed record ContainerSpec
{
    public required string ContainerId { get; init; }
    public required string BundleDirectory { get; init; }
    public required string WorkDirectory { get; init; }
    public required IReadOnlyList<string> Command { get; init; }

    /// <summary>The run's own host uid (and gid), from <see cref="Execution.SandboxUids"/>.</summary>
    public required int Uid { get; init; }

    public required long MemoryBytes { get; init; }

    /// <summary>The program's processes; the runner adds its own (tini, perhaps the runtime) to the limit.</summary>
    public required int Processes { get; init; }

    /// <summary>Size of the container's own /tmp tmpfs and the largest file it may write (RLIMIT_FSIZE).</summary>
    public required long DiskBytes { get; init; }

    /// <summary>The CPU-time limit; the service's watchdog enforces it, RLIMIT_CPU is the backstop.</summary>
    public required TimeSpan CpuTime { get; init; }
}

/// <summary>
/// Writes config.json for one container. Everything that is the same for every run (mounts of the host
/// trees, masked paths, capabilities, the seccomp filter) is fixed at construction; a run only streams
/// its own values into the file, which takes microseconds.
/// </summary>
internal sealed class OciBundleBuilder
{
    /// <summary>Name of the container's cgroup inside the run's cgroup.</summary>
    public const string ContainerCgroup = "ctr";
    public const string SeccompBpfAnnotation = "run.oci.seccomp_bpf_data";

    private const long ShmBytes = 16L << 20;

    /// <summary>Files and folders each writable tmpfs may hold (/work has the same, RunDirectory).</summary>
    public const int MaxInodes = 16_384;

    private const int ShmInodes = 1_024;

    // The rlimits a run has besides the ones its limits give: nothing is inherited from the service.
    private const long MemlockBytes = 64 << 10;
    private const long MessageQueueBytes = 256 << 10;
    private const long PendingSignals = 1_024;
    private const long StackBytes = 8L << 20;

    /// <summary>
    /// What current runtimes mask (runc's and Docker's list): host-wide counters, kernel addresses and
    /// timers, hardware. /sys is not mounted at all (no listed language needs it: glibc and the JVM count
    /// CPUs from /proc and sched_getaffinity, and the JVM is told its limits).
    /// </summary>
    private static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>The whole environment of a run. USER and LOGNAME name the uid, which has a passwd entry of its own (SandboxRootfs).</summary>
    private static readonly string[] Environment =
        ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "LANG=C.UTF-8", "TMPDIR=/tmp", "USER=sandbox", "LOGNAME=sandbox"];

    /// <summary>
    /// Debian's tini package has a static build next to the dynamic one: it starts without the dynamic
    /// loader's work, which every container pays for (about 0.3 ms of CPU each). /usr is bound as it is.
    /// </summary>
    private static readonly string Init = File.Exists("/usr/bin/tini-static") ? "/usr/bin/tini-static" : "/usr/bin/tini";

    private readonly SandboxRootfs _rootfs;
    private readonly int _openFiles;
    private readonly string? _seccompBpfBase64;

    /// <summary>
    /// With <paramref name="seccompBpf"/> (the filter as crun compiled it) configs carry it as an annotation;
    /// with null they carry the JSON profile, which the runtime compiles on every run.
    /// </summary>
    public OciBundleBuilder(SandboxRootfs rootfs, SandboxOptions options, byte[]? seccompBpf)
    {
        _rootfs = rootfs;
        _openFiles = options.OpenFiles;
        _seccompBpfBase64 = seccompBpf is null ? null : Convert.ToBase64String(seccompBpf);
    }

    /// <summary>
    /// The seccomp allowlist (Bundle/seccomp.json, OCI format, and the socket rules of <see cref="SeccompProfile"/>).
    /// About 260 ordinary syscalls are allowed. Namespace, mount, ptrace, process_vm, keyctl, bpf, perf, io_uring,
    /// kexec, module, reboot, swap, mknod (no FIFOs in /work/out) and clock-setting calls fail with EPERM; clone only
    /// passes without CLONE_NEW* flags, and clone3 (whose flags a filter cannot see) fails with ENOSYS so glibc falls
    /// back to clone. Anything else fails with ENOSYS rather than EPERM, because libc treats ENOSYS as "use the older
    /// call". Only x86-64 calls are allowed; 32-bit entry points kill the process.
    /// </summary>
    public static byte[] SeccompProfileJson => SeccompProfile.Json;

    /// <summary>
    /// Writes the bundle's config.json. <paramref name="cgroupPath"/> is the run's cgroup, e.g.
    /// <c>/runbox/rbx-…</c>: the service creates it with the memory, process and CPU limits, and a runtime
    /// that manages cgroups creates the container's own beneath it (<see cref="ContainerCgroup"/>).
    /// </summary>
    public string Write(ContainerSpec spec, string cgroupPath)
    {
        Directory.CreateDirectory(spec.BundleDirectory);
        var path = Path.Combine(spec.BundleDirectory, "config.json");
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 16 * 1024);
        using var json = new Utf8JsonWriter(file);
        json.WriteStartObject();
        json.WriteString("ociVersion", "1.0.2");
        WriteProcess(json, spec);
        json.WriteStartObject("root");
        json.WriteString("path", _rootfs.Path);
        json.WriteBoolean("readonly", true);
        json.WriteEndObject();
        json.WriteString("hostname", "sandbox");
        WriteMounts(json, spec);
        WriteLinux(json, cgroupPath);
        if (_seccompBpfBase64 is not null)
        {
            json.WriteStartObject("annotations");
            json.WriteString(SeccompBpfAnnotation, _seccompBpfBase64);
            json.WriteEndObject();
        }
        json.WriteEndObject();
        return path;
    }

    private void WriteProcess(Utf8JsonWriter json, ContainerSpec spec)
    {
        json.WriteStartObject("process");
        json.WriteBoolean("terminal", false);
        json.WriteStartObject("user");
        json.WriteNumber("uid", spec.Uid);
        json.WriteNumber("gid", spec.Uid);
        json.WriteEndObject();
        json.WriteStartArray("args");
        // tini as PID 1 forwards SIGTERM (the kernel drops unhandled signals to a namespace's init) and
        // reaps orphans. It parses options anywhere in argv, so "--" ends them before the program's own.
        json.WriteStringValue(Init);
        json.WriteStringValue("--");
        foreach (var arg in spec.Command)
        {
            json.WriteStringValue(arg);
        }
        json.WriteEndArray();
        WriteStrings(json, "env", Environment);
        json.WriteString("cwd", "/work");
        json.WriteStartObject("capabilities");
        foreach (var set in (string[])["bounding", "effective", "inheritable", "permitted", "ambient"])
        {
            json.WriteStartArray(set);
            json.WriteEndArray();
        }
        json.WriteEndObject();
        json.WriteStartArray("rlimits");
        // Few descriptors per process (judged programs need a handful; the JVM and Node about twenty): they
        // bound the sockets, and so the socket buffers, a run can hold.
        WriteRlimit(json, "RLIMIT_NOFILE", _openFiles);
        WriteRlimit(json, "RLIMIT_CORE", 0);
        WriteRlimit(json, "RLIMIT_FSIZE", spec.DiskBytes);
        // The service's CPU watchdog stops a run at its limit. If the service itself dies mid-run, the
        // kernel still ends each CPU burner a couple of seconds past the limit instead of never.
        var cpuSeconds = (long)Math.Ceiling(spec.CpuTime.TotalSeconds) + 2;
        WriteRlimit(json, "RLIMIT_CPU", cpuSeconds, cpuSeconds + 1);
        // Per-uid counts (the uid is the run's own): a second fence behind the pids cgroup. Every process
        // and thread of the uid counts, tini among them; the runtime runs as root and does not.
        WriteRlimit(json, "RLIMIT_NPROC", spec.Processes + 1);
        WriteRlimit(json, "RLIMIT_MEMLOCK", MemlockBytes);
        WriteRlimit(json, "RLIMIT_MSGQUEUE", MessageQueueBytes);
        WriteRlimit(json, "RLIMIT_SIGPENDING", PendingSignals);
        // The usual 8 MiB stack; a program may raise it up to its memory limit (deep recursion).
        WriteRlimit(json, "RLIMIT_STACK", StackBytes, Math.Max(StackBytes, spec.MemoryBytes));
        WriteRlimit(json, "RLIMIT_NICE", 0);
        WriteRlimit(json, "RLIMIT_RTPRIO", 0);
        WriteRlimit(json, "RLIMIT_RTTIME", 0);
        json.WriteEndArray();
        json.WriteBoolean("noNewPrivileges", true);
        // The program (and tini) are the OOM killer's first choice, in the run's memory cgroup and on the
        // host: with crun started inside the run cgroup (CgroupPlacement), a program of many processes
        // smaller than crun (~3 MiB) would otherwise get crun killed first. A program may lower its score
        // back to the default (never below, without CAP_SYS_RESOURCE); getting crun killed then only
        // fails its own run, whose processes go when the run cgroup is removed.
        json.WriteNumber("oomScoreAdj", 1000);
        json.WriteEndObject();
    }

    private void WriteMounts(Utf8JsonWriter json, ContainerSpec spec)
    {
        json.WriteStartArray("mounts");
        WriteMount(json, "/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]);
        WriteMount(json, "/dev", "tmpfs", "tmpfs", ["nosuid", "noexec", "strictatime", "mode=755", "size=64k"]);
        WriteMount(json, "/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
        WriteMount(json, "/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", SizeOption(Math.Min(ShmBytes, spec.DiskBytes)), InodesOption(ShmInodes)]);
        WriteMount(json, "/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]);
        foreach (var host in _rootfs.HostBinds)
        {
            // Recursive read-only, nosuid and nodev: a host mount below /usr (a /usr/local of its own) gets
            // them too. A file has nothing below it, and crun refuses recursive options on one.
            WriteMount(json, host, "bind", host, Directory.Exists(host) ? ["rbind", "rro", "rnosuid", "rnodev"] : ["rbind", "ro", "nosuid", "nodev"]);
        }
        WriteMount(json, "/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777", SizeOption(spec.DiskBytes), InodesOption(MaxInodes)]);
        // /work is a size-limited tmpfs the service mounted on the host (see RunDirectory): bound, not
        // created here, so the compile and the run container share it and the service can fill it first.
        WriteMount(json, "/work", "bind", spec.WorkDirectory, ["rbind", "rw", "nosuid", "nodev"]);
        json.WriteEndArray();
    }

    private void WriteLinux(Utf8JsonWriter json, string cgroupPath)
    {
        json.WriteStartObject("linux");
        json.WriteStartArray("namespaces");
        foreach (var ns in (string[])["pid", "network", "ipc", "uts", "mount", "cgroup"])
        {
            json.WriteStartObject();
            json.WriteString("type", ns);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        // Memory, process and CPU limits are on the run's cgroup above this one (Cgroups/Cgroupfs.cs), where
        // the counters survive the container; only the device allowlist is the container's own.
        json.WriteStartObject("resources");
        json.WriteStartArray("devices");
        json.WriteStartObject();
        json.WriteBoolean("allow", false);
        json.WriteString("access", "rwm");
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteString("cgroupsPath", cgroupPath + "/" + ContainerCgroup);
        WriteStrings(json, "maskedPaths", MaskedPaths);
        WriteStrings(json, "readonlyPaths", ReadonlyPaths);
        if (_seccompBpfBase64 is null)
        {
            json.WritePropertyName("seccomp");
            json.WriteRawValue(SeccompProfileJson, skipInputValidation: true);
        }
        json.WriteEndObject();
    }

    private static void WriteMount(Utf8JsonWriter json, string destination, string type, string source, string[] options)
    {
        json.WriteStartObject();
        json.WriteString("destination", destination);
        json.WriteString("type", type);
        json.WriteString("source", source);
        WriteStrings(json, "options", options);
        json.WriteEndObject();
    }

    private static void WriteRlimit(Utf8JsonWriter json, string type, long soft, long? hard = null)
    {
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteNumber("hard", hard ?? soft);
        json.WriteNumber("soft", soft);
        json.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter json, string name, IEnumerable<string> values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
        {
            json.WriteStringValue(value);
        }
        json.WriteEndArray();
    }

    private static string SizeOption(long bytes) => "size=" + bytes.ToString(CultureInfo.InvariantCulture);

    private static string InodesOption(int inodes) => "nr_inodes=" + inodes.ToString(CultureInfo.InvariantCulture);
}
