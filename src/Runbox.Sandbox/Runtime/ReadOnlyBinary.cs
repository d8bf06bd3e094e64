using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Runtime;

/// <summary>
/// A read-only bind mount of the runtime's binary in the sandbox's state folder. On every call crun and
/// runc otherwise copy their own binary into a sealed memfd and execute themselves again from it, so that
/// a container cannot overwrite the host's binary through /proc/self/exe (CVE-2019-5736). A binary on a
/// read-only mount cannot be overwritten either, and both runtimes accept it in place of the copy
/// (with <c>_LIBCONTAINER_CLONED_BINARY</c> set, see <see cref="OciRuntime"/>). Measured here: crun's CPU
/// per container from 10 to 7 ms.
/// </summary>
internal static class ReadOnlyBinary
{
    /// <summary>Mounts <paramref name="binary"/> at <c>bin/&lt;name&gt;</c> in <paramref name="stateDirectory"/>; returns that path.</summary>
    /// <exception cref="IOException">The mount failed.</exception>
    public static string Mount(string binary, string name, string stateDirectory)
    {
        var folder = Path.Combine(stateDirectory, "bin");
        Directory.CreateDirectory(folder);
        var target = Path.Combine(folder, name);
        // A crashed process leaves its mount; the binary may have been upgraded since.
        Unmount(target);
        File.WriteAllBytes(target, []);
        Libc.BindReadOnly(Path.GetFullPath(binary), target);
        return target;
    }

    /// <summary>Removes every mount stacked on <paramref name="target"/>.</summary>
    public static void Unmount(string target)
    {
        while (Libc.Unmount(target))
        {
        }
    }
}
