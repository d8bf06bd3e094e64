using Runbox.Core.Tasks;

namespace Runbox.Core.Seams;

public static class TaskEventsExtensions
{
    /// <summary>Announces each status a successful store change passed through, in order.</summary>
    public static async Task PublishStatusesAsync(this ITaskEvents events, Guid taskId, int attempt, IEnumerable<TaskStatus> statuses, CancellationToken cancellationToken)
    {
        foreach (var status in statuses)
        {
            await events.PublishAsync(taskId, new TaskEvent("status", status.ToWire()) { Attempt = attempt }, cancellationToken);
        }
    }
}
