using System.ComponentModel.DataAnnotations;

namespace Runbox.Worker;

/// <summary>How one worker process runs tasks. Section <c>Runbox:Worker</c>.</summary>
public sealed class WorkerOptions : IValidatableObject
{
    public const string Section = "Runbox:Worker";
    public const int DefaultSlots = 4;

    /// <summary>Concurrent runs in this process (<c>--slots</c>).</summary>
    [Range(1, 4096)]
    public int Slots { get; set; } = DefaultSlots;

    /// <summary>Unique per process; defaults to host name, process id and a random part. A name starting with '~' is the queue's own.</summary>
    [RegularExpression(@"^[^~\s][^\s]{0,127}$")]
    public string? Id { get; set; }

    /// <summary>This process's worker id: <see cref="Id"/>, or the host name, the process id and a random part.</summary>
    public string WorkerId => Id ?? ProcessWorkerId;

    // Host name and pid alone repeat across containers: under --network host each has the host's name, and the
    // service is the same pid in each. The random part keeps two such processes from sharing one registration.
    private static readonly string ProcessWorkerId =
        $"{Environment.MachineName}-{Environment.ProcessId}-{System.Security.Cryptography.RandomNumberGenerator.GetHexString(4, lowercase: true)}";

    /// <summary>How often leases are renewed; a third of the lease keeps two renewals of slack.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>On SIGTERM, how long running attempts may finish before they are handed back.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How often the maintenance leader looks for expired leases (and every process tries to lead).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan ReapInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the maintenance leader checks the queue against the store and applies retention.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the maintenance lead lasts without renewal (it is renewed every <see cref="ReapInterval"/>): after
    /// the leader dies, another process takes over within this.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan MaintenanceTerm { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Finished tasks older than this are deleted; zero keeps them for ever.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MaintenanceTerm <= ReapInterval)
        {
            yield return new ValidationResult("MaintenanceTerm must be longer than ReapInterval, at which the lead is renewed.", [nameof(MaintenanceTerm), nameof(ReapInterval)]);
        }
    }
}
