using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Runbox.Sandbox.Runtime;

/// <summary>
/// The OCI runtime CLI (crun or runc; both take the same commands and config.json). Commands take no
/// cancellation token on purpose: a stop or delete must finish even when the caller gave up. The runtime
/// keeps its containers' state in root (its <c>--root</c>; null for its default under /run). With
/// readOnlyBinary, the path is a read-only mount of the binary (<see cref="ReadOnlyBinary"/>): the runtime
/// is told so, and skips copying itself before each call. Without <paramref name="managesCgroups"/> the
/// runtime creates no cgroups: the caller starts it inside the cgroups the container is to have
/// (<see cref="Cgroups.CgroupPlacement"/>).
/// </summary>
internal sealed class OciRuntime(string name, string path, string? root, ILogger logger, bool readOnlyBinary = false, bool managesCgroups = true, TimeSpan? commandTimeout = null)
{
    public const string Crun = "crun";
    public const string Runc = "runc";

    /// <summary>
    /// With this set, crun and runc trust a binary on a read-only mount instead of copying themselves
    /// into a sealed memfd and re-executing from it (their defence against CVE-2019-5736).
    /// </summary>
    private const string ClonedBinaryVariable = "_LIBCONTAINER_CLONED_BINARY";

    public string Name { get; } = name;
    public string Path { get; } = path;

    /// <summary>Where the runtime keeps a container's state while it exists: <c>&lt;root&gt;/&lt;id&gt;/</c>.</summary>
    public string StateRoot { get; } = root ?? "/run/" + name;

    /// <summary>crun can take a precompiled seccomp filter (annotation run.oci.seccomp_bpf_data); runc cannot.</summary>
    public bool TakesPrecompiledSeccomp => Name == Crun;

    /// <summary>crun can leave cgroups to its caller (<c>--cgroup-manager=disabled</c>); runc always manages them.</summary>
    public bool CanRunWithoutCgroupManager => Name == Crun;

    public bool ManagesCgroups { get; } = managesCgroups;

    /// <summary>The same runtime, told to create no cgroups.</summary>
    public OciRuntime WithoutCgroupManager() => CanRunWithoutCgroupManager
        ? new(Name, Path, root, logger, readOnlyBinary, managesCgroups: false, commandTimeout)
        : throw new InvalidOperationException($"{Name} always manages cgroups");

    /// <summary>
    /// Starts <c>run</c> in the foreground with redirected stdio: the container's processes write to these
    /// pipes, and the runtime exits with the container init's exit code (128+N when a signal N killed it)
    /// once the container has ended and the runtime has removed it and its cgroup. Runtime errors go to
    /// <paramref name="logFile"/>, not into the program's stderr; <paramref name="pidFile"/> appears when
    /// the container is set up and its program starts.
    /// (One <c>run</c> costs about half the CPU of <c>create</c> + <c>start</c> + <c>delete</c>; the
    /// counters that <c>run</c> would take with it live in the run's own cgroup above the container's.)
    /// </summary>
    public Process StartRun(string containerId, string bundleDirectory, string pidFile, string logFile)
    {
        var info = new ProcessStartInfo(Path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])["--log", logFile, "run", "--bundle", bundleDirectory, "--pid-file", pidFile, containerId])
        {
            info.ArgumentList.Add(arg);
        }
        Prepare(info);
        return Process.Start(info) ?? throw new InvalidOperationException($"{Name} run did not start");
    }

    /// <summary>Signals the container's init, or with <paramref name="all"/> every process in it.</summary>
    /// <remarks>Fails harmlessly when the container has already stopped, so the result is only logged.</remarks>
    public async Task KillAsync(string containerId, string signal, bool all)
    {
        if (all && !ManagesCgroups)
        {
            // Without its cgroup the runtime cannot list the container's processes, and `kill --all` signals
            // none (crun 1.8.1 exits 0 having done nothing). SIGKILL to the init ends them all anyway: the
            // kernel kills the rest of a pid namespace when its init dies.
            all = signal == "KILL"
                ? false
                : throw new ArgumentException("only KILL reaches every process of a container without a cgroup manager", nameof(signal));
        }
        var result = await RunAsync(all ? ["kill", "--all", containerId, signal] : ["kill", containerId, signal]);
        if (result.ExitCode != 0)
        {
            Log.KillFailed(logger, Name, signal, containerId, result.Error);
        }
    }

    /// <summary>
    /// Removes the container and its cgroups, killing what still runs. True when it is gone. <c>run</c>
    /// deletes its container itself; this is for the ones whose runtime process died (leftovers).
    /// </summary>
    public async Task<bool> DeleteAsync(string containerId)
    {
        var result = await RunAsync(["delete", "--force", containerId]);
        if (result.ExitCode != 0 && !await ExistsAsync(containerId))
        {
            return true;
        }
        if (result.ExitCode != 0)
        {
            Log.RuntimeCommandFailed(logger, Name, "delete", containerId, result.ExitCode, result.Error);
        }
        return result.ExitCode == 0;
    }

    public async Task<IReadOnlyList<string>> ListAsync()
    {
        var result = await RunAsync(["list", "--quiet"]);
        if (result.ExitCode != 0)
        {
            throw new SandboxException($"{Name} list failed: {result.Error}");
        }
        return result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    public async Task<string> VersionAsync()
    {
        var result = await RunAsync(["--version"]);
        var firstLine = result.Output.Split('\n', 2)[0].Trim();
        return result.ExitCode == 0 && firstLine.Length > 0 ? firstLine : "unknown version";
    }

    private async Task<bool> ExistsAsync(string containerId)
    {
        var result = await RunAsync(["state", containerId]);
        return result.ExitCode == 0;
    }

    private async Task<CliResult> RunAsync(string[] args)
    {
        var info = new ProcessStartInfo(Path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        Prepare(info);
        using var process = Process.Start(info) ?? throw new SandboxException($"{Name} did not start");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(CommandTimeout);
        }
        catch (TimeoutException)
        {
            // A hung runtime must not hold a slot (or the startup) for ever: it is killed, and the caller
            // sees a failure it can report.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new SandboxException($"{Name} {string.Join(' ', args)} did not finish within {CommandTimeout.TotalSeconds:0} s and was killed");
        }
        return new CliResult(process.ExitCode, await output, (await error).Trim());
    }

    /// <summary>The longest one runtime command (kill, delete, list, state) may take; they take milliseconds.</summary>
    private TimeSpan CommandTimeout { get; } = commandTimeout ?? TimeSpan.FromSeconds(30);

    private void Prepare(ProcessStartInfo info)
    {
        if (root is not null)
        {
            // A global option: it goes before the command.
            info.ArgumentList.Insert(0, root);
            info.ArgumentList.Insert(0, "--root");
        }
        if (!ManagesCgroups)
        {
            info.ArgumentList.Insert(0, "--cgroup-manager=disabled");
        }
        if (readOnlyBinary)
        {
            info.Environment[ClonedBinaryVariable] = "1";
        }
    }

    private sealed record CliResult(int ExitCode, string Output, string Error);
}
