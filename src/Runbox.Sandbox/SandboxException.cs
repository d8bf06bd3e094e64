namespace Runbox.Sandbox;

/// <summary>The sandbox itself failed (runtime, cgroups, host setup); never thrown for what a program does.</summary>
public sealed class SandboxException : Exception
{
    public SandboxException(string message) : base(message)
    {
    }

    public SandboxException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
