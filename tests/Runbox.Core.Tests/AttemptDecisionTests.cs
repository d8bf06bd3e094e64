using Runbox.Core.Execution;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Core.Tests;

public class AttemptDecisionTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);
    private static readonly Guid Id = Guid.NewGuid();

    private static TaskRecord Task(int maxAttempts = 3) => new()
    {
        Id = Id,
        Spec = new TaskSpec { User = "alice", Language = "python", Source = "x" },
        Status = TaskStatus.Running,
        MaxAttempts = maxAttempts,
        CreatedAt = Now,
    };

    [Fact]
    public void ForResult_TimeLimitWithAttemptsLeft_RetriesAfterBackoff()
    {
        var decision = AttemptDecision.ForResult(new ExecutionResult { Verdict = Verdict.TimeLimit }, Task(), attempt: 1, Now, random: 0.5);

        Assert.Equal(TaskStatus.Timeout, decision.Status);
        Assert.Equal(Now + RetryPolicy.Default.Backoff(1, 0.5), decision.RetryAt);
        Assert.Equal([TaskStatus.Timeout, TaskStatus.Pending], decision.ToTransitions(Id, 4, "w", "r", null).Select(t => t.To));
    }

    [Fact]
    public void ForResult_TimeLimitOnLastAttempt_DeadLetters()
    {
        var decision = AttemptDecision.ForResult(new ExecutionResult { Verdict = Verdict.TimeLimit }, Task(), attempt: 3, Now, random: 0.5);

        Assert.True(decision.DeadLetter);
        Assert.Null(decision.RetryAt);
        Assert.Equal(OutcomeKind.DeadLetter, decision.ToQueueOutcome(null).Kind);
        Assert.True(Assert.Single(decision.ToTransitions(Id, 4, "w", "r", null)).DeadLettered);
    }

    [Fact]
    public void ForResult_RuntimeErrorNotInPolicy_FailsWithoutDeadLetter()
    {
        var decision = AttemptDecision.ForResult(new ExecutionResult { Verdict = Verdict.RuntimeError, ExitCode = 1 }, Task(), attempt: 1, Now, random: 0.5);

        Assert.Equal(TaskStatus.Failed, decision.Status);
        Assert.False(decision.DeadLetter);
        Assert.Equal(OutcomeKind.Failed, decision.ToQueueOutcome(null).Kind);
    }

    [Fact]
    public void RequeueLost_AnyBudget_FailsThenPendingAtOnceWithTheGivenReasons()
    {
        var steps = AttemptDecision.RequeueLost(Now).ToTransitions(Id, 7, null, "lost", ExecutionResult.InternalError("gone"), "requeued");

        Assert.Equal([(TaskStatus.Running, TaskStatus.Failed, "lost"), (TaskStatus.Failed, TaskStatus.Pending, "requeued")], steps.Select(s => (s.From, s.To, s.Reason)));
        Assert.All(steps, s => Assert.Equal(7, s.Fence));
        Assert.Equal(Now, steps[1].NextAttemptAt);
    }

    [Theory]
    [InlineData(OutcomeKind.Retry, TaskStatus.Failed, 2)]
    [InlineData(OutcomeKind.DeadLetter, TaskStatus.Timeout, 1)]
    [InlineData(OutcomeKind.Cancelled, TaskStatus.Cancelled, 1)]
    public void FromQueue_ReaperOutcome_SameStepsAsTheQueueDecided(OutcomeKind kind, TaskStatus status, int steps)
    {
        var outcome = new AttemptOutcome(kind, status) { RetryAt = kind == OutcomeKind.Retry ? Now : null };

        var transitions = AttemptDecision.FromQueue(outcome).ToTransitions(Id, 9, null, "lease expired", null);

        Assert.Equal(steps, transitions.Count);
        Assert.Equal(status, transitions[0].To);
        Assert.Equal(kind == OutcomeKind.DeadLetter ? true : null, transitions[0].DeadLettered);
    }
}
