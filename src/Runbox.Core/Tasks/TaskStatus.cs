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

    public static bool TryParse(string? text, out TaskStatus status)
    {
        foreach (var candidate in Enum.GetValues<TaskStatus>())
        {
            if (string.Equals(candidate.ToWire(), text, StringComparison.Ordinal))
            {
                status = candidate;
                return true;
            }
        }
        status = default;
        return false;
    }

    public static TaskStatus Parse(string text) =>
        TryParse(text, out var status) ? status : throw new FormatException($"Unknown task status '{text}'.");
}
