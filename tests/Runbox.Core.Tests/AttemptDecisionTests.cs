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

    [Fact]
    public void ForEnd_Shutdown_InfrastructureFailureRetriedAtOnce()
    {
        var (decision, result) = AttemptDecision.ForEnd(AttemptEnd.Shutdown, new ExecutionResult { Verdict = Verdict.Cancelled }, Task() with { Attempt = 1 }, Now, random: 0.5);

        Assert.Equal((TaskStatus.Failed, FailureKind.Infrastructure, Now), (decision.Status, decision.Failure, decision.RetryAt));
        Assert.Equal(Verdict.InternalError, result.Verdict);
    }

    [Theory]
    [InlineData(AttemptEnd.PastDeadline, Verdict.TimeLimit, TaskStatus.Timeout)]
    [InlineData(AttemptEnd.Cancelled, Verdict.Cancelled, TaskStatus.Cancelled)]
    [InlineData(AttemptEnd.Ran, Verdict.RuntimeError, TaskStatus.Failed)]
    public void ForEnd_HowTheRunEnded_DecidesTheVerdictRecorded(AttemptEnd end, Verdict verdict, TaskStatus status)
    {
        var (decision, result) = AttemptDecision.ForEnd(end, new ExecutionResult { Verdict = Verdict.RuntimeError, ExitCode = 1 }, Task() with { Attempt = 1 }, Now, random: 0.5);

        Assert.Equal((verdict, status), (result.Verdict, decision.Status));
    }

    /// <summary>The reaper and the worker decide with the same function and the task's own policy: the same lost attempt waits the same.</summary>
    [Fact]
    public void ForLostLease_PastDeadline_RetriedWithTheSameBackoffAsATimeoutTheWorkerSaw()
    {
        var policy = RetryPolicy.Default with { Base = TimeSpan.FromSeconds(7), Factor = 3 };
        var task = Task() with { Attempt = 2, Spec = Task().Spec with { Retry = policy } };
        var reaped = new ReapedTask(Id, "alice", 9, 2, Stalls: 1, CancelRequested: false, PastDeadline: true);

        var (lost, _) = AttemptDecision.ForLostLease(reaped, task, maxStalls: 3, Now, random: 0.25);
        var (seen, _) = AttemptDecision.ForEnd(AttemptEnd.Ran, new ExecutionResult { Verdict = Verdict.TimeLimit }, task, Now, random: 0.25);

        Assert.Equal(Now + policy.Backoff(2, 0.25), lost.RetryAt);
        Assert.Equal(seen, lost);
    }

    [Fact]
    public void ForLostLease_RetryNotInPolicy_FailsWithoutRetry()
    {
        var task = Task() with { Attempt = 1, Spec = Task().Spec with { Retry = RetryPolicy.Default with { On = new HashSet<FailureKind>() } } };

        var (decision, result) = AttemptDecision.ForLostLease(new ReapedTask(Id, "alice", 9, 1, 1, false, false), task, maxStalls: 3, Now, 0.5);

        Assert.Equal((TaskStatus.Failed, false, false), (decision.Status, decision.Retries, decision.DeadLetter));
        Assert.Equal(AttemptDecision.LeaseLostError, result.Error);
    }

    [Fact]
    public void ForLostLease_MoreStallsThanAllowed_DeadLettersAsPoisonWhateverThePolicy()
    {
        var task = Task(maxAttempts: 20) with { Attempt = 4 };

        var (decision, result) = AttemptDecision.ForLostLease(new ReapedTask(Id, "alice", 9, 4, Stalls: 4, false, false), task, maxStalls: 3, Now, 0.5);

        Assert.Equal((TaskStatus.Failed, false, true), (decision.Status, decision.Retries, decision.DeadLetter));
        Assert.Contains("poison", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ForLostLease_CancelRequested_Cancelled()
    {
        var (decision, result) = AttemptDecision.ForLostLease(new ReapedTask(Id, "alice", 9, 1, 1, CancelRequested: true, PastDeadline: true), Task() with { Attempt = 1 }, 3, Now, 0.5);

        Assert.Equal((TaskStatus.Cancelled, Verdict.Cancelled), (decision.Status, result.Verdict));
        Assert.Equal([TaskStatus.Cancelled], decision.Statuses);
    }
}
