namespace Runbox.Cli.Server;

/// <summary>
/// The server cannot start on this host or with this configuration: not root, no usable cgroup hierarchy,
/// controllers not delegated, no OCI runtime, a setting out of bounds. The message is one line that says
/// what is wrong and how to fix it; the program prints it alone, without a stack trace, and exits with
/// <see cref="ExitCode"/>.
/// </summary>
public sealed class StartupRefusedException(string message, Exception? inner = null)
    : Exception(message.ReplaceLineEndings(" "), inner)
{
    /// <summary>EX_CONFIG of sysexits.h: the unit (deploy/runbox.service) does not restart on it.</summary>
    public const int ExitCode = 78;
}
