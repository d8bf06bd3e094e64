using Microsoft.Extensions.Time.Testing;
using Runbox.Core.Execution;
using Runbox.Core.Retry;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Tests.Shared;

namespace Runbox.Store.Tests;

/// <summary>
/// The behaviour every <see cref="ITaskStore"/> owes its callers. Each backend runs all of it
/// through a subclass that supplies a fresh, private database per test.
/// </summary>
public abstract class TaskStoreContractTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    // The table from ARCHITECTURE.md, written out independently of TaskStateMachine.
    private static readonly HashSet<(TaskStatus From, TaskStatus To)> Allowed =
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

    protected FakeTimeProvider Time { get; } = new(Start);

    protected static StoreOptions Options { get; } = new()
    {
        MaxOutputBytes = 4096,
        MaxArtifactCount = 3,
        MaxArtifactBytes = 1024,
    };

    protected SqlTaskStore Store { get; private set; } = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates this test's empty database.</summary>
    protected abstract Task CreateDatabaseAsync();

    /// <summary>A new, not yet migrated store on this test's database (as a second process would open it).</summary>
    protected abstract SqlTaskStore OpenStore();

    /// <summary>Rows in a table of this test's database, read behind the store's back.</summary>
    protected abstract Task<long> CountRowsAsync(string table);

    /// <summary>Runs <paramref name="sql"/> on this test's database behind the store's back; returns the first column of the first row.</summary>
    protected abstract Task<object?> ExecuteRawAsync(string sql);

    protected abstract Task DropDatabaseAsync();

    public async ValueTask InitializeAsync()
    {
        await CreateDatabaseAsync();
        Store = OpenStore();
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        await DropDatabaseAsync();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task CreateAsync_NewTask_IsPendingWithSubmittedTransition()
    {
        var result = await Store.CreateAsync(new NewTask(Spec()), Ct);

        Assert.True(result.Created);
        var task = result.Task;
        Assert.Equal(TaskStatus.Pending, task.Status);
        Assert.Equal("alice", task.User);
        Assert.Equal(0, task.Attempt);
        Assert.Equal(RetryPolicy.DefaultMaxAttempts, task.MaxAttempts);
        Assert.Equal(0, task.Fence);
        Assert.Equal(Start, task.CreatedAt);
        Assert.Null(task.StartedAt);
        Assert.Null(task.FinishedAt);
        Assert.Null(task.Result);
        Assert.False(task.DeadLettered);
        var transition = Assert.Single(task.Transitions);
        Assert.Equal(new TaskTransition(null, TaskStatus.Pending, Start, 0, "submitted", null), transition);
        AssertSameTask(task, await Store.GetAsync(task.Id, Ct));
    }

    [Fact]
    public async Task CreateAsync_FullSpec_RoundTripsExactly()
    {
        var spec = new TaskSpec
        {
            User = "bob",
            Language = "cpp",
            Source = "int main() { return 0; }\n\0 é ✓",
            Stdin = "line 1\nline 2\n",
            Args = ["-v", "--name=x y"],
            Files =
            [
                new TaskFile("util.h", "#pragma once"),
                new TaskFile("data.bin", Convert.ToBase64String([0, 1, 2, 255]), FileEncoding.Base64),
            ],
            Priority = 9,
            Limits = new Core.Limits.Limits
            {
                WallTime = TimeSpan.FromTicks(12_345_678),
                CpuTime = TimeSpan.FromMilliseconds(1500.5),
                MemoryBytes = 123_456_789,
                Processes = 7,
                OutputBytes = 4096,
                DiskBytes = 1L << 33,
            },
            Retry = new RetryPolicy
            {
                MaxAttempts = 5,
                On = new HashSet<FailureKind> { FailureKind.RuntimeError, FailureKind.MemoryLimit, FailureKind.OutputLimit },
                Base = TimeSpan.FromMilliseconds(250),
                Cap = TimeSpan.FromMinutes(2),
                Factor = 3.5,
                Jitter = 0.125,
            },
            Labels = new Dictionary<string, string> { ["exercise"] = "42", ["Mixed Case"] = "ü" },
        };

        var created = (await Store.CreateAsync(new NewTask(spec), Ct)).Task;
        var read = (await Store.GetAsync(created.Id, Ct))!;

        AssertSpecEqual(spec, created.Spec);
        AssertSpecEqual(spec, read.Spec);
        Assert.Equal(5, read.MaxAttempts);
    }

    [Fact]
    public async Task CreateAsync_SameUserSameKey_ReturnsFirstTaskNotCreated()
    {
        var first = await Store.CreateAsync(new NewTask(Spec(), "key-1"), Ct);
        var again = await Store.CreateAsync(new NewTask(Spec() with { Source = "other" }, "key-1"), Ct);

        Assert.True(first.Created);
        Assert.False(again.Created);
        Assert.Equal(first.Task.Id, again.Task.Id);
        Assert.Equal("print(1)", again.Task.Spec.Source);
        Assert.Equal("key-1", again.Task.IdempotencyKey);
        Assert.Equal(1, await CountRowsAsync("tasks"));
    }

    [Fact]
    public async Task CreateAsync_OtherUserSameKey_CreatesNewTask()
    {
        var alice = await Store.CreateAsync(new NewTask(Spec("alice"), "key-1"), Ct);
        var bob = await Store.CreateAsync(new NewTask(Spec("bob"), "key-1"), Ct);

        Assert.True(bob.Created);
        Assert.NotEqual(alice.Task.Id, bob.Task.Id);
        Assert.Equal("bob", bob.Task.User);
    }

    [Fact]
    public async Task CreateAsync_NoKey_CreatesEveryTime()
    {
        var first = await Store.CreateAsync(new NewTask(Spec()), Ct);
        var second = await Store.CreateAsync(new NewTask(Spec()), Ct);

        Assert.True(second.Created);
        Assert.NotEqual(first.Task.Id, second.Task.Id);
    }

    [Fact]
    public async Task CreateAsync_ParallelSameKey_CreatesOneTask()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ =>
            Task.Run(() => Store.CreateAsync(new NewTask(Spec(), "same"), Ct), Ct)));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.Task.Id).Distinct());
        Assert.Equal(1, await CountRowsAsync("tasks"));
        Assert.Equal(1, await CountRowsAsync("transitions"));
    }

    [Fact]
    public async Task GetAsync_UnknownId_ReturnsNull()
    {
        Assert.Null(await Store.GetAsync(Guid.NewGuid(), Ct));
    }

    [Theory]
    [MemberData(nameof(StatusPairs.EveryCell), MemberType = typeof(StatusPairs))]
    public async Task TransitionAsync_EveryCell_FollowsStateMachine(TaskStatus from, TaskStatus to)
    {
        var task = await ReachAsync(from);

        var result = await Store.TransitionAsync([Step(task, from, to, fence: 2) with
        {
            Result = TaskStateMachine.IsFinished(to) ? Ok("done") : null,
        }], Ct);

        var stored = (await Store.GetAsync(task.Id, Ct))!;
        if (Allowed.Contains((from, to)))
        {
            Assert.True(result.Succeeded);
            Assert.Equal(to, result.Task!.Status);
            Assert.Equal(to, stored.Status);
            Assert.Equal(task.Transitions.Count + 1, stored.Transitions.Count);
        }
        else
        {
            Assert.Equal(TransitionConflict.InvalidTransition, result.Conflict);
            Assert.Equal(from, result.ActualStatus);
            Assert.Null(result.Task);
            AssertSameTask(task, stored);
        }
    }

    [Fact]
    public async Task TransitionAsync_Claim_StartsAttemptWithWorkerAndFence()
    {
        var task = await CreateAsync();
        Time.Advance(TimeSpan.FromSeconds(3));

        var result = await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 4) with { WorkerId = "w1" }], Ct);

        var running = result.Task!;
        Assert.Equal(TaskStatus.Running, running.Status);
        Assert.Equal(1, running.Attempt);
        Assert.Equal(4, running.Fence);
        Assert.Equal("w1", running.WorkerId);
        Assert.Equal(Start.AddSeconds(3), running.StartedAt);
        Assert.Null(running.FinishedAt);
        Assert.Equal(new TaskTransition(TaskStatus.Pending, TaskStatus.Running, Start.AddSeconds(3), 1, "test", "w1"), running.Transitions[^1]);
    }

    [Fact]
    public async Task TransitionAsync_ClaimWithoutHigherFence_IsStaleFence()
    {
        var task = await ReachAsync(TaskStatus.Failed);
        await Store.TransitionAsync([Step(task, TaskStatus.Failed, TaskStatus.Pending, fence: 1)], Ct);

        var sameFence = await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1)], Ct);
        var higherFence = await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 2)], Ct);

        Assert.Equal(TransitionConflict.StaleFence, sameFence.Conflict);
        Assert.Equal(TaskStatus.Pending, sameFence.ActualStatus);
        Assert.True(higherFence.Succeeded);
        Assert.Equal(2, higherFence.Task!.Attempt);
    }

    [Fact]
    public async Task TransitionAsync_StaleFence_KeepsStatusAndResult()
    {
        var task = await CreateAsync();
        await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 5)], Ct);

        var stale = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 4) with { Result = Ok("zombie") }], Ct);

        Assert.Equal(TransitionConflict.StaleFence, stale.Conflict);
        Assert.Equal(TaskStatus.Running, stale.ActualStatus);
        var stored = (await Store.GetAsync(task.Id, Ct))!;
        Assert.Equal(TaskStatus.Running, stored.Status);
        Assert.Equal(5, stored.Fence);
        Assert.Null(stored.Result);
        Assert.Null(stored.FinishedAt);
        Assert.Equal(2, stored.Transitions.Count);
        Assert.Equal(0, await CountRowsAsync("attempts"));
    }

    [Fact]
    public async Task CommitAsync_ResultWithRetry_StoredLikeTransitionAsyncButNothingIsReadBack()
    {
        var task = await CreateAsync();
        await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 2)], Ct);

        var committed = await Store.CommitAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 2) with { Result = ExecutionResult.InternalError("lost") },
            Step(task, TaskStatus.Failed, TaskStatus.Pending, fence: 2) with { NextAttemptAt = Start.AddSeconds(5) },
        ], Ct);
        var stale = await Store.CommitAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1)], Ct);

        Assert.True(committed.Succeeded);
        Assert.Equal((TaskStatus.Pending, null), (committed.ActualStatus, committed.Task));
        var stored = (await Store.GetAsync(task.Id, Ct))!;
        Assert.Equal((TaskStatus.Pending, "lost", Start.AddSeconds(5)), (stored.Status, stored.Result!.Error, stored.NextAttemptAt));
        Assert.Equal((TransitionConflict.StaleFence, TaskStatus.Pending), (stale.Conflict, stale.ActualStatus));
    }

    [Fact]
    public async Task TransitionAsync_ReaperTakeover_HigherFenceWinsAndOldFenceIsRefused()
    {
        var task = await CreateAsync();
        await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1) with { WorkerId = "old" }], Ct);

        // The reaper bumps the fence when the lease expires and sends the task back to pending.
        var reaped = await Store.TransitionAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Timeout, fence: 2) with { Reason = "lease expired", Result = ExecutionResult.InternalError("lease lost") },
            Step(task, TaskStatus.Timeout, TaskStatus.Pending, fence: 2) with { Reason = "retry", NextAttemptAt = Start.AddSeconds(1) },
        ], Ct);
        var reclaimed = await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 3) with { WorkerId = "new" }], Ct);
        var zombie = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = Ok("late") }], Ct);
        var current = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 3) with { Result = Ok("fresh") }], Ct);

        Assert.True(reaped.Succeeded);
        Assert.True(reclaimed.Succeeded);
        Assert.Equal(TransitionConflict.StaleFence, zombie.Conflict);
        Assert.True(current.Succeeded);
        var stored = (await Store.GetAsync(task.Id, Ct))!;
        Assert.Equal(TaskStatus.Completed, stored.Status);
        Assert.Equal(2, stored.Attempt);
        Assert.Equal(3, stored.Fence);
        Assert.Equal("fresh", stored.Result!.Stdout);
        Assert.Equal("new", stored.WorkerId);
    }

    [Fact]
    public async Task TransitionAsync_FailAndRetryInOneCall_AppliesBoth()
    {
        var task = await ReachAsync(TaskStatus.Running);
        Time.Advance(TimeSpan.FromSeconds(10));
        var retryAt = Start.AddSeconds(12);

        var result = await Store.TransitionAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { Reason = "runtime_error", Result = Failed("boom") },
            Step(task, TaskStatus.Failed, TaskStatus.Pending, fence: 1) with { Reason = "retry", NextAttemptAt = retryAt },
        ], Ct);

        var pending = result.Task!;
        Assert.Equal(TaskStatus.Pending, pending.Status);
        Assert.Equal(retryAt, pending.NextAttemptAt);
        Assert.Null(pending.FinishedAt);
        Assert.Equal("boom", pending.Result!.Stderr);
        Assert.Equal(
            [(null, TaskStatus.Pending), (TaskStatus.Pending, TaskStatus.Running), (TaskStatus.Running, TaskStatus.Failed), (TaskStatus.Failed, TaskStatus.Pending)],
            pending.Transitions.Select(t => (t.From, t.To)).ToArray());
        Assert.Equal(["submitted", "test", "runtime_error", "retry"], pending.Transitions.Select(t => t.Reason).ToArray());
    }

    [Fact]
    public async Task TransitionAsync_InvalidSecondStep_LeavesTaskRunning()
    {
        var task = await ReachAsync(TaskStatus.Running);

        var result = await Store.TransitionAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { Result = Failed("boom") },
            Step(task, TaskStatus.Failed, TaskStatus.Completed, fence: 1),
        ], Ct);

        Assert.Equal(TransitionConflict.InvalidTransition, result.Conflict);
        Assert.Equal(TaskStatus.Running, result.ActualStatus);
        AssertSameTask(task, await Store.GetAsync(task.Id, Ct));
    }

    [Fact]
    public async Task TransitionAsync_StaleSecondStep_RollsBackFirstStep()
    {
        var task = await ReachAsync(TaskStatus.Running);
        Time.Advance(TimeSpan.FromSeconds(1));

        // The first step is written before the second is refused; the refusal must undo it.
        var result = await Store.TransitionAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { Result = Failed("boom"), DeadLettered = true },
            Step(task, TaskStatus.Failed, TaskStatus.Pending, fence: 0),
        ], Ct);

        Assert.Equal(TransitionConflict.StaleFence, result.Conflict);
        Assert.Equal(TaskStatus.Running, result.ActualStatus);
        AssertSameTask(task, await Store.GetAsync(task.Id, Ct));
        Assert.Equal(0, await CountRowsAsync("attempts"));
    }

    [Fact]
    public async Task TransitionAsync_SecondStepFromWrongStatus_IsStatusMismatchAndChangesNothing()
    {
        var task = await ReachAsync(TaskStatus.Running);

        var result = await Store.TransitionAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Timeout, fence: 1),
            Step(task, TaskStatus.Failed, TaskStatus.Pending, fence: 1),
        ], Ct);

        Assert.Equal(TransitionConflict.StatusMismatch, result.Conflict);
        Assert.Equal(TaskStatus.Running, result.ActualStatus);
        AssertSameTask(task, await Store.GetAsync(task.Id, Ct));
    }

    [Fact]
    public async Task TransitionAsync_UnknownTask_IsNotFound()
    {
        var result = await Store.TransitionAsync([new TransitionRequest(Guid.NewGuid(), TaskStatus.Pending, TaskStatus.Cancelled, "user")], Ct);

        Assert.Equal(TransitionConflict.NotFound, result.Conflict);
        Assert.Null(result.ActualStatus);
    }

    [Fact]
    public async Task TransitionAsync_ExpectedStatusDiffers_IsStatusMismatchWithActualStatus()
    {
        var task = await CreateAsync();

        var result = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1)], Ct);

        Assert.Equal(TransitionConflict.StatusMismatch, result.Conflict);
        Assert.Equal(TaskStatus.Pending, result.ActualStatus);
    }

    [Fact]
    public async Task TransitionAsync_UserCancelWithoutFence_SkipsFenceCheckAndKeepsFence()
    {
        var task = await CreateAsync();
        await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 7)], Ct);

        var cancelled = await Store.TransitionAsync([new TransitionRequest(task.Id, TaskStatus.Running, TaskStatus.Cancelled, "cancelled by user")], Ct);

        Assert.True(cancelled.Succeeded);
        Assert.Equal(7, cancelled.Task!.Fence);
        Assert.Equal(TaskStatus.Cancelled, cancelled.Task.Status);
        Assert.Equal(Start, cancelled.Task.FinishedAt);
    }

    [Fact]
    public async Task TransitionAsync_UserCancelOfFinishedTask_IsRefused()
    {
        var task = await ReachAsync(TaskStatus.Completed);

        var result = await Store.TransitionAsync([new TransitionRequest(task.Id, TaskStatus.Running, TaskStatus.Cancelled, "cancelled by user")], Ct);

        Assert.Equal(TransitionConflict.StatusMismatch, result.Conflict);
        Assert.Equal(TaskStatus.Completed, result.ActualStatus);
    }

    [Fact]
    public async Task TransitionAsync_Transitions_RecordFromToAtAttemptReasonAndWorker()
    {
        var task = await CreateAsync();
        Time.Advance(TimeSpan.FromMinutes(1));
        await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1) with { WorkerId = "w1", Reason = "claimed" }], Ct);
        Time.Advance(TimeSpan.FromMinutes(1));
        await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { WorkerId = "w1", Reason = "exited 0", Result = Ok("hi") }], Ct);

        var stored = (await Store.GetAsync(task.Id, Ct))!;

        Assert.Equal(
            [
                new TaskTransition(null, TaskStatus.Pending, Start, 0, "submitted", null),
                new TaskTransition(TaskStatus.Pending, TaskStatus.Running, Start.AddMinutes(1), 1, "claimed", "w1"),
                new TaskTransition(TaskStatus.Running, TaskStatus.Completed, Start.AddMinutes(2), 1, "exited 0", "w1"),
            ],
            stored.Transitions);
        Assert.Equal(Start.AddMinutes(2), stored.FinishedAt);
    }

    [Fact]
    public async Task TransitionAsync_DeadLetterAndRequeue_UpdateFlagsAndKeepCountingAttempts()
    {
        var task = await ReachAsync(TaskStatus.Running);
        var dead = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { DeadLettered = true, Result = Failed("x") }], Ct);

        var requeued = await Store.TransitionAsync(
            [new TransitionRequest(task.Id, TaskStatus.Failed, TaskStatus.Pending, "requeued") { DeadLettered = false, MaxAttempts = 6, NextAttemptAt = Start }], Ct);
        var claimed = await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 2)], Ct);

        Assert.True(dead.Task!.DeadLettered);
        Assert.Equal(RetryPolicy.DefaultMaxAttempts, dead.Task.MaxAttempts);
        Assert.False(requeued.Task!.DeadLettered);
        Assert.Equal(6, requeued.Task.MaxAttempts);
        Assert.Equal(2, claimed.Task!.Attempt);
        Assert.Null(claimed.Task.NextAttemptAt);
    }

    [Fact]
    public async Task TransitionAsync_ResultPerAttempt_LatestAttemptIsShown()
    {
        var task = await ReachAsync(TaskStatus.Running);
        await Store.TransitionAsync(
        [
            Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { Result = Failed("first") with { Artifacts = [new Artifact("first.txt", [1])] } },
            Step(task, TaskStatus.Failed, TaskStatus.Pending, fence: 1),
        ], Ct);
        var afterRetry = await Store.GetAsync(task.Id, Ct);
        await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 2)], Ct);
        var whileRunning = await Store.GetAsync(task.Id, Ct);
        await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 2) with { Result = Ok("second") with { Artifacts = [new Artifact("second.txt", [2])] } }], Ct);

        var stored = (await Store.GetAsync(task.Id, Ct))!;

        Assert.Equal("first", afterRetry!.Result!.Stderr);
        Assert.Equal("first", whileRunning!.Result!.Stderr);
        Assert.Equal("second", stored.Result!.Stdout);
        Assert.Equal(["second.txt"], stored.Result.Artifacts.Select(a => a.Name).ToArray());
        Assert.Null(await Store.GetArtifactAsync(task.Id, "first.txt", Ct));
        Assert.Equal(new byte[] { 2 }, await Store.GetArtifactAsync(task.Id, "second.txt", Ct));
        Assert.Equal(2, await CountRowsAsync("attempts"));
    }

    [Fact]
    public async Task TransitionAsync_FullResult_RoundTripsExactly()
    {
        var task = await ReachAsync(TaskStatus.Running);
        var result = new ExecutionResult
        {
            Verdict = Verdict.RuntimeError,
            ExitCode = 139,
            Signal = "SIGSEGV",
            Stdout = "partial\0output ✓",
            Stderr = "Segmentation fault\n",
            StdoutTruncated = true,
            WallTime = TimeSpan.FromTicks(313_337),
            CpuTime = TimeSpan.FromMilliseconds(12),
            MemoryPeakBytes = 5_242_880,
            Compile = new CompileResult { Succeeded = true, ExitCode = 0, Output = "warning: x", WallTime = TimeSpan.FromSeconds(1.25), CpuTime = TimeSpan.FromTicks(9), MemoryPeakBytes = 77 },
            Artifacts = [new Artifact("out.bin", [0, 255, 7]), new Artifact("empty.txt", [])],
            Error = null,
        };

        var finished = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { Result = result }], Ct);
        var stored = (await Store.GetAsync(task.Id, Ct))!;

        AssertResultEqual(result, finished.Task!.Result!);
        AssertResultEqual(result, stored.Result!);
        Assert.Equal(new byte[] { 0, 255, 7 }, await Store.GetArtifactAsync(task.Id, "out.bin", Ct));
        Assert.Equal(Array.Empty<byte>(), await Store.GetArtifactAsync(task.Id, "empty.txt", Ct));
        Assert.Null(await Store.GetArtifactAsync(task.Id, "missing", Ct));
    }

    [Fact]
    public async Task TransitionAsync_OutputOverBound_IsCutAndMarkedTruncated()
    {
        var task = await ReachAsync(TaskStatus.Running);
        var withinBound = new string('a', Options.MaxOutputBytes);
        // 'é' is two bytes in UTF-8, so the cut at an odd byte count falls inside a character.
        var overBound = "x" + new string('é', Options.MaxOutputBytes);

        await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = Ok(withinBound) with { Stderr = overBound } }], Ct);
        var stored = (await Store.GetAsync(task.Id, Ct))!.Result!;

        Assert.Equal(withinBound, stored.Stdout);
        Assert.False(stored.StdoutTruncated);
        Assert.Equal(overBound[..((Options.MaxOutputBytes - 1) / 2 + 1)], stored.Stderr);
        Assert.True(stored.StderrTruncated);
    }

    [Fact]
    public async Task TransitionAsync_ArtifactsOverBounds_KeepsWhatFitsAndSaysSo()
    {
        var task = await ReachAsync(TaskStatus.Running);
        Artifact[] artifacts =
        [
            new("a", new byte[400]),
            new("too-big", new byte[Options.MaxArtifactBytes]),
            new("b", new byte[400]),
            new("a", new byte[1]),
            new("c", new byte[10]),
            new("d", new byte[10]),
        ];

        var finished = await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = Ok("") with { Artifacts = artifacts } }], Ct);

        var result = finished.Task!.Result!;
        Assert.Equal(["a", "b", "c"], result.Artifacts.Select(a => a.Name).ToArray());
        Assert.Equal(400, result.Artifacts[0].SizeBytes);
        Assert.Contains("Artifacts truncated: kept 3 of 6", result.Error, StringComparison.Ordinal);
        Assert.Null(await Store.GetArtifactAsync(task.Id, "too-big", Ct));
        Assert.Equal(TaskStatus.Completed, finished.Task.Status);
    }

    [Fact]
    public async Task TransitionAsync_ParallelClaims_ExactlyOneWins()
    {
        var task = await CreateAsync();

        var results = await Task.WhenAll(Enumerable.Range(1, 32).Select(fence =>
            Task.Run(() => Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence) with { WorkerId = $"w{fence}" }], Ct), Ct)));

        var winner = Assert.Single(results, r => r.Succeeded);
        Assert.All(results.Where(r => !r.Succeeded), r => Assert.Contains(r.Conflict, new TransitionConflict?[] { TransitionConflict.StaleFence, TransitionConflict.StatusMismatch }));
        var stored = (await Store.GetAsync(task.Id, Ct))!;
        Assert.Equal(TaskStatus.Running, stored.Status);
        Assert.Equal(1, stored.Attempt);
        Assert.Equal(winner.Task!.Fence, stored.Fence);
        Assert.Equal($"w{stored.Fence}", stored.WorkerId);
        Assert.Equal(2, stored.Transitions.Count);
    }

    [Fact]
    public async Task TransitionAsync_ParallelCancelAndComplete_ExactlyOneWins()
    {
        for (var round = 0; round < 8; round++)
        {
            var task = await ReachAsync(TaskStatus.Running);

            var cancel = Task.Run(() => Store.TransitionAsync([new TransitionRequest(task.Id, TaskStatus.Running, TaskStatus.Cancelled, "user")], Ct), Ct);
            var complete = Task.Run(() => Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = Ok("hi") }], Ct), Ct);
            var results = await Task.WhenAll(cancel, complete);

            var winner = Assert.Single(results, r => r.Succeeded);
            var loser = Assert.Single(results, r => !r.Succeeded);
            Assert.Equal(TransitionConflict.StatusMismatch, loser.Conflict);
            Assert.Equal(winner.Task!.Status, loser.ActualStatus);
            var stored = (await Store.GetAsync(task.Id, Ct))!;
            Assert.Equal(winner.Task.Status, stored.Status);
            Assert.Equal(3, stored.Transitions.Count);
        }
    }

    [Fact]
    public async Task TransitionAsync_BadArguments_Throw()
    {
        var task = await CreateAsync();
        var other = await CreateAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => Store.TransitionAsync([], Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.TransitionAsync(
            [Step(task, TaskStatus.Pending, TaskStatus.Cancelled, null), Step(other, TaskStatus.Pending, TaskStatus.Cancelled, null)], Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, null)], Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.TransitionAsync(
            [Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1) with { Result = Ok("") }], Ct));
        AssertSameTask(task, await Store.GetAsync(task.Id, Ct));
    }

    [Fact]
    public async Task TransitionAsync_TextWithMarkupNonAsciiAndNul_IsStoredUnescapedAndReadsBack()
    {
        const string Text = "<b>é ✓ & 'q'</b>\0end";
        var task = (await Store.CreateAsync(new NewTask(Spec() with { Source = Text }), Ct)).Task;
        task = (await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1)], Ct)).Task!;
        await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = Ok(Text) with { Stderr = Text } }], Ct);

        var stored = (await Store.GetAsync(task.Id, Ct))!;
        var resultJson = Convert.ToString(await ExecuteRawAsync("SELECT result FROM attempts"), System.Globalization.CultureInfo.InvariantCulture);
        var specJson = Convert.ToString(await ExecuteRawAsync("SELECT spec FROM tasks"), System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal(Text, stored.Spec.Source);
        Assert.Equal(Text, stored.Result!.Stdout);
        Assert.Equal(Text, stored.Result.Stderr);
        // Only the control character is escaped: markup and non-ASCII text are kept as they are.
        Assert.Contains("<b>é ✓ & 'q'</b>\\u0000end", resultJson, StringComparison.Ordinal);
        Assert.Contains("<b>é ✓ & 'q'</b>\\u0000end", specJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListAsync_CursorWalk_VisitsEveryTaskNewestFirstOnce()
    {
        // All created within the same instant: the order must still be exact.
        var created = new List<Guid>();
        for (var i = 0; i < 25; i++)
        {
            created.Add((await CreateAsync()).Id);
        }

        var seen = new List<Guid>();
        var pageSizes = new List<int>();
        string? cursor = null;
        do
        {
            var page = await Store.ListAsync(new TaskQuery { User = "alice", Limit = 7, Cursor = cursor }, Ct);
            seen.AddRange(page.Items.Select(t => t.Id));
            pageSizes.Add(page.Items.Count);
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        created.Reverse();
        Assert.Equal(created, seen);
        Assert.Equal([7, 7, 7, 4], pageSizes);
    }

    [Fact]
    public async Task ListAsync_ExactlyFullPage_HasNoNextCursor()
    {
        await CreateAsync();
        await CreateAsync();

        var page = await Store.ListAsync(new TaskQuery { Limit = 2 }, Ct);

        Assert.Equal(2, page.Items.Count);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public async Task ListAsync_Filters_SelectByUserStatusAndDeadLetter()
    {
        var pending = await CreateAsync("alice");
        var running = await ReachAsync(TaskStatus.Running);
        var dead = await ReachAsync(TaskStatus.Running);
        await Store.TransitionAsync([Step(dead, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { DeadLettered = true }], Ct);
        var bobs = await CreateAsync("bob");

        async Task<Guid[]> Ids(TaskQuery query) => (await Store.ListAsync(query, Ct)).Items.Select(t => t.Id).ToArray();

        Assert.Equal([running.Id], await Ids(new TaskQuery { Status = TaskStatus.Running }));
        Assert.Equal([bobs.Id, pending.Id], await Ids(new TaskQuery { Status = TaskStatus.Pending }));
        Assert.Equal([pending.Id], await Ids(new TaskQuery { User = "alice", Status = TaskStatus.Pending }));
        Assert.Equal([bobs.Id], await Ids(new TaskQuery { User = "bob" }));
        Assert.Equal([dead.Id], await Ids(new TaskQuery { DeadLettered = true }));
        Assert.Equal([bobs.Id, running.Id, pending.Id], await Ids(new TaskQuery { DeadLettered = false }));
        Assert.Equal([bobs.Id, dead.Id, running.Id, pending.Id], await Ids(new TaskQuery()));
    }

    [Fact]
    public async Task ListAsync_Items_CarryTheirOwnTransitionsAndResults()
    {
        var done = await ReachAsync(TaskStatus.Completed);
        var pending = await CreateAsync();

        var items = (await Store.ListAsync(new TaskQuery(), Ct)).Items;

        Assert.Equal([pending.Id, done.Id], items.Select(t => t.Id).ToArray());
        AssertSameTask((await Store.GetAsync(done.Id, Ct))!, items[1]);
        AssertSameTask((await Store.GetAsync(pending.Id, Ct))!, items[0]);
        Assert.Equal(3, items[1].Transitions.Count);
        Assert.Equal("done", items[1].Result!.Stdout);
    }

    [Fact]
    public async Task ListAsync_TaskWithLargeOutputs_ListsPreviewsAndGetAsyncKeepsThemWhole()
    {
        // Under the store's own bound (4096 bytes here): only the preview cuts them.
        var whole = Ok("a" + new string('é', 1500)) with
        {
            Stderr = new string('x', 3000),
            StdoutTruncated = true,
            Compile = new CompileResult { Succeeded = true, Output = "✓" + new string('w', 3000) },
            Artifacts = [new Artifact("out.txt", [1, 2, 3])],
        };
        var task = await ReachAsync(TaskStatus.Running);
        await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = whole }], Ct);

        var listed = Assert.Single((await Store.ListAsync(new TaskQuery(), Ct)).Items).Result!;
        var got = (await Store.GetAsync(task.Id, Ct))!.Result!;

        // Cut on a character boundary: one more 'é' (2 bytes) would pass 1024.
        Assert.Equal("a" + new string('é', 511), listed.Stdout);
        Assert.Equal(new string('x', TaskPage.PreviewBytes), listed.Stderr);
        Assert.Equal("✓" + new string('w', TaskPage.PreviewBytes - 3), listed.Compile!.Output);
        // Everything but the outputs is the whole result, the truncation flags included.
        AssertResultEqual(whole with { Stdout = listed.Stdout, Stderr = listed.Stderr, Compile = whole.Compile with { Output = listed.Compile.Output } }, listed);
        AssertResultEqual(whole, got);
    }

    [Fact]
    public async Task ListAsync_AttemptRecordedBeforePreviewsWereKept_ListsAPreviewOfItsFullResult()
    {
        var task = await ReachAsync(TaskStatus.Running);
        await Store.TransitionAsync([Step(task, TaskStatus.Running, TaskStatus.Completed, fence: 1) with { Result = Ok("stored") }], Ct);
        // The database as schema version 1 left it: no previews, and the result as the old encoder
        // wrote it (every '<' and non-ASCII character escaped).
        await ExecuteRawAsync("DROP TABLE attempt_previews");
        await ExecuteRawAsync("DELETE FROM runbox_schema_migrations WHERE version > 1");
        var escaped = @"\u003Cp\u003E" + string.Concat(Enumerable.Repeat(@"\u00E9", 1500));
        await ExecuteRawAsync($$"""UPDATE attempts SET result = '{"verdict":"ok","exit_code":0,"stdout":"{{escaped}}"}'""");
        await using var upgraded = OpenStore();

        var listed = Assert.Single((await upgraded.ListAsync(new TaskQuery(), Ct)).Items).Result!;
        var got = (await upgraded.GetAsync(task.Id, Ct))!.Result!;

        Assert.Equal("<p>" + new string('é', 510), listed.Stdout);
        Assert.Equal("<p>" + new string('é', 1500), got.Stdout);
        Assert.Equal(2, await CountRowsAsync("runbox_schema_migrations"));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(-5, 1)]
    [InlineData(500, SqlTaskStore.MaxPageSize)]
    public async Task ListAsync_LimitOutOfRange_IsClamped(int limit, int expected)
    {
        for (var i = 0; i < SqlTaskStore.MaxPageSize + 1; i++)
        {
            await CreateAsync();
        }

        var page = await Store.ListAsync(new TaskQuery { Limit = limit }, Ct);

        Assert.Equal(expected, page.Items.Count);
        Assert.NotNull(page.NextCursor);
    }

    [Theory]
    [InlineData("not a cursor!")]
    [InlineData("AAAAAAAAAAA")]
    [InlineData("AAAAAQ")]
    [InlineData("AAAAAAAAAAEAAQ")]
    public async Task ListAsync_MalformedCursor_ThrowsArgumentException(string cursor)
    {
        await CreateAsync();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => Store.ListAsync(new TaskQuery { Cursor = cursor }, Ct));

        Assert.Contains("cursor", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ListByStatusAsync_Pages_InSubmissionOrder()
    {
        var first = await CreateAsync();
        await ReachAsync(TaskStatus.Running);
        var second = await CreateAsync("bob");
        var third = await CreateAsync();

        var page1 = await Store.ListByStatusAsync(TaskStatus.Pending, 2, null, Ct);
        var page2 = await Store.ListByStatusAsync(TaskStatus.Pending, 2, page1[^1].Id, Ct);
        var page3 = await Store.ListByStatusAsync(TaskStatus.Pending, 2, page2[^1].Id, Ct);

        Assert.Equal([first.Id, second.Id], page1.Select(t => t.Id).ToArray());
        Assert.Equal([third.Id], page2.Select(t => t.Id).ToArray());
        Assert.Empty(page3);
        Assert.Single(page1[0].Transitions);
    }

    [Fact]
    public async Task ListByStatusAsync_TaskRetriedAfterAResult_ComesWithoutTheResult()
    {
        var failed = await ReachAsync(TaskStatus.Running);
        await Store.TransitionAsync(
        [
            Step(failed, TaskStatus.Running, TaskStatus.Failed, fence: 1) with { Result = Failed("boom") with { Artifacts = [new Artifact("f", [1])] } },
            Step(failed, TaskStatus.Failed, TaskStatus.Pending, fence: 1) with { NextAttemptAt = Start },
        ], Ct);

        var listed = Assert.Single(await Store.ListByStatusAsync(TaskStatus.Pending, 10, null, Ct));

        Assert.Null(listed.Result);
        Assert.Equal(4, listed.Transitions.Count);
        Assert.Equal("boom", (await Store.GetAsync(failed.Id, Ct))!.Result!.Stderr);
    }

    [Fact]
    public async Task ListByStatusAsync_UnknownAfterId_ReturnsNothing()
    {
        await CreateAsync();

        Assert.Empty(await Store.ListByStatusAsync(TaskStatus.Pending, 10, Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task ListByStatusAsync_LimitBelowOne_Throws()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.ListByStatusAsync(TaskStatus.Pending, 0, null, Ct));
    }

    [Fact]
    public async Task DeleteFinishedBeforeAsync_OldFinishedForGood_DeletedWithEverythingElseKept()
    {
        var completed = await ReachAsync(TaskStatus.Completed);
        var cancelled = await ReachAsync(TaskStatus.Cancelled);
        var deadLettered = await ReachAsync(TaskStatus.Running);
        await Store.TransitionAsync([Step(deadLettered, TaskStatus.Running, TaskStatus.Timeout, fence: 1) with { DeadLettered = true, Result = Ok("t") with { Artifacts = [new Artifact("f", [1])] } }], Ct);
        var failed = await ReachAsync(TaskStatus.Failed);
        var pending = await CreateAsync();
        var running = await ReachAsync(TaskStatus.Running);
        Time.Advance(TimeSpan.FromDays(2));
        var recent = await ReachAsync(TaskStatus.Completed);

        var deleted = await Store.DeleteFinishedBeforeAsync(Start.AddDays(1), Ct);

        Assert.Equal(4, deleted);
        foreach (var gone in new[] { completed, cancelled, deadLettered, failed })
        {
            Assert.Null(await Store.GetAsync(gone.Id, Ct));
        }
        foreach (var kept in new[] { pending, running, recent })
        {
            Assert.NotNull(await Store.GetAsync(kept.Id, Ct));
        }
        var keptTransitions = pending.Transitions.Count + running.Transitions.Count + recent.Transitions.Count;
        Assert.Equal(keptTransitions, await CountRowsAsync("transitions"));
        Assert.Equal(1, await CountRowsAsync("attempts"));
        Assert.Equal(0, await CountRowsAsync("artifacts"));
    }

    [Fact]
    public async Task MigrateAsync_TwoStoresAtOnce_BothSucceedAndShareData()
    {
        await using var other = OpenStore();

        await Task.WhenAll(Task.Run(() => Store.MigrateAsync(Ct), Ct), Task.Run(() => other.MigrateAsync(Ct), Ct));
        var task = await CreateAsync();
        await using var third = OpenStore();

        Assert.NotNull(await other.GetAsync(task.Id, Ct));
        Assert.NotNull(await third.GetAsync(task.Id, Ct));
        Assert.Equal(2, await CountRowsAsync("runbox_schema_migrations"));
    }

    private static TaskSpec Spec(string user = "alice") => new() { User = user, Language = "python", Source = "print(1)" };

    private static ExecutionResult Ok(string stdout) => new() { Verdict = Verdict.Ok, ExitCode = 0, Stdout = stdout };

    private static ExecutionResult Failed(string stderr) => new() { Verdict = Verdict.RuntimeError, ExitCode = 1, Stderr = stderr };

    private static TransitionRequest Step(TaskRecord task, TaskStatus from, TaskStatus to, long? fence) =>
        new(task.Id, from, to, "test") { Fence = fence };

    private async Task<TaskRecord> CreateAsync(string user = "alice") => (await Store.CreateAsync(new NewTask(Spec(user)), Ct)).Task;

    /// <summary>A new task brought to <paramref name="status"/> by the shortest legal path, claimed with fence 1.</summary>
    private async Task<TaskRecord> ReachAsync(TaskStatus status)
    {
        var task = await CreateAsync();
        if (status == TaskStatus.Pending)
        {
            return task;
        }
        task = (await Store.TransitionAsync([Step(task, TaskStatus.Pending, TaskStatus.Running, fence: 1)], Ct)).Task!;
        if (status == TaskStatus.Running)
        {
            return task;
        }
        var result = status == TaskStatus.Completed ? Ok("done") : Failed("failed");
        return (await Store.TransitionAsync([Step(task, TaskStatus.Running, status, fence: 1) with { Result = result }], Ct)).Task!;
    }

    /// <summary>Records hold lists, which records compare by reference; this compares their contents.</summary>
    private static void AssertSameTask(TaskRecord expected, TaskRecord? actual)
    {
        Assert.NotNull(actual);
        AssertSpecEqual(expected.Spec, actual.Spec);
        Assert.Equal(expected.Transitions, actual.Transitions);
        Assert.Equal(expected.Result is null, actual.Result is null);
        if (expected.Result is not null)
        {
            AssertResultEqual(expected.Result, actual.Result!);
        }
        Assert.Equal(expected with { Spec = actual.Spec, Transitions = actual.Transitions, Result = actual.Result }, actual);
    }

    private static void AssertSpecEqual(TaskSpec expected, TaskSpec actual)
    {
        Assert.Equal(expected.Files, actual.Files);
        Assert.Equal(expected.Args, actual.Args);
        Assert.Equal(expected.Labels.OrderBy(l => l.Key), actual.Labels.OrderBy(l => l.Key));
        Assert.Equal(expected.Retry.On.Order(), actual.Retry.On.Order());
        Assert.Equal(expected.Retry with { On = actual.Retry.On }, actual.Retry);
        Assert.Equal(expected.Limits, actual.Limits);
        Assert.Equal(expected with { Files = actual.Files, Args = actual.Args, Labels = actual.Labels, Retry = actual.Retry }, actual);
    }

    private static void AssertResultEqual(ExecutionResult expected, ExecutionResult actual)
    {
        Assert.Equal(expected.Artifacts.Select(a => (a.Name, Convert.ToHexString(a.Content))), actual.Artifacts.Select(a => (a.Name, Convert.ToHexString(a.Content))));
        Assert.Equal(expected with { Artifacts = actual.Artifacts }, actual);
    }
}
