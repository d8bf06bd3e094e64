using Runbox.Core.Tasks;
using Runbox.Tests.Shared;

namespace Runbox.Core.Tests;

public class TaskStateMachineTests
{
    // The table from ARCHITECTURE.md, written out independently of the implementation.
    private static readonly HashSet<(TaskStatus From, TaskStatus To)> Expected =
    [
        (TaskStatus.Pending, TaskStatus.Running),
        (TaskStatus.Pending, TaskStatus.Cancelled),
        (TaskStatus.Running, TaskStatus.Completed),
        (TaskStatus.Running, TaskStatus.Failed),
        (TaskStatus.Running, TaskStatus.Timeout),
        (TaskStatus.Running, TaskStatus.Cancelled),
        (TaskStatus.Failed, TaskStatus.Pending),
        (TaskStatus.Timeout, TaskStatus.Pending),
    ];

    [Theory]
    [MemberData(nameof(StatusPairs.EveryCell), MemberType = typeof(StatusPairs))]
    public void CanTransition_EveryCell_MatchesContractTable(TaskStatus from, TaskStatus to)
    {
        Assert.Equal(Expected.Contains((from, to)), TaskStateMachine.CanTransition(from, to));
    }

    [Theory]
    [MemberData(nameof(StatusPairs.EveryCell), MemberType = typeof(StatusPairs))]
    public void EnsureAllowed_EveryCell_ThrowsOnlyForRefused(TaskStatus from, TaskStatus to)
    {
        if (Expected.Contains((from, to)))
        {
            TaskStateMachine.EnsureAllowed(from, to);
        }
        else
        {
            var error = Assert.Throws<InvalidTransitionException>(() => TaskStateMachine.EnsureAllowed(from, to));
            Assert.Equal(from, error.From);
            Assert.Equal(to, error.To);
        }
    }

    [Theory]
    [InlineData(TaskStatus.Completed, true)]
    [InlineData(TaskStatus.Cancelled, true)]
    [InlineData(TaskStatus.Failed, false)]
    [InlineData(TaskStatus.Timeout, false)]
    [InlineData(TaskStatus.Pending, false)]
    [InlineData(TaskStatus.Running, false)]
    public void IsTerminal_Status_OnlyCompletedAndCancelled(TaskStatus status, bool terminal)
    {
        Assert.Equal(terminal, TaskStateMachine.IsTerminal(status));
    }

    [Fact]
    public void ToWire_EveryStatus_RoundTrips()
    {
        foreach (var status in Enum.GetValues<TaskStatus>())
        {
            Assert.Equal(status, TaskStatusNames.Parse(status.ToWire()));
        }
    }
}
