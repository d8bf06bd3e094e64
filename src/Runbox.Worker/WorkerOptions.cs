using System.ComponentModel.DataAnnotations;

namespace Runbox.Worker;

/// <summary>How one worker process runs tasks. Section <c>Runbox:Worker</c>.</summary>
public sealed class WorkerOptions
{
    public const string Section = "Runbox:Worker";
    public const int DefaultSlots = 4;

    /// <summary>Concurrent runs in this process (<c>--slots</c>).</summary>
    [Range(1, 4096)]
    public int Slots { get; set; } = DefaultSlots;

    /// <summary>Unique per process; defaults to host name and process id.</summary>
    public string? Id { get; set; }

    /// <summary>How often leases are renewed; a third of the lease keeps two renewals of slack.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>On SIGTERM, how long running attempts may finish before they are handed back.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);

    public TimeSpan ReapInterval { get; set; } = TimeSpan.FromSeconds(2);

    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Finished tasks older than this are deleted; zero keeps them for ever.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);
}
