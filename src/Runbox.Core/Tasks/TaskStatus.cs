namespace Runbox.Core.Tasks;

/// <summary>The life-cycle state of a task. The wire form is the lower-case name.</summary>
public enum TaskStatus
{
    Pending,
    Running,
    Completed,
    Failed,
    Timeout,
    Cancelled,
}

public static class TaskStatusNames
{
    public static string ToWire(this TaskStatus status) => status switch
    {
        TaskStatus.Pending => "pending",
        TaskStatus.Running => "running",
        TaskStatus.Completed => "completed",
        TaskStatus.Failed => "failed",
        TaskStatus.Timeout => "timeout",
        TaskStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static bool TryParse(string? text, out TaskStatus status) => WireNames.TryParse(text, ToWire, out status);

    public static TaskStatus Parse(string text) =>
        TryParse(text, out var status) ? status : throw new FormatException($"Unknown task status '{text}'.");
}
