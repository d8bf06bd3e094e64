using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runbox.Core.Execution;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Worker.Tests;

/// <summary>The worker pool on the real engine, Redis and store, with a sandbox that runs what the test says.</summary>
public sealed class WorkerPoolTests(RedisFixture redis)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Run_ClaimedTask_RunsInTheSandboxAndCompletes()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var sandbox = new ScriptedSandbox(_ => Task.FromResult(new ExecutionResult { Verdict = Verdict.Ok, ExitCode = 0, Stdout = "hi\n" }));
        var pool = Pool(h, sandbox);
        await pool.StartAsync(Ct);
        var task = await h.SubmitAsync();

        var done = await WaitForAsync(h, task.Id, t => t.Status == TaskStatus.Completed);
        var registered = Assert.Single(await h.Queue.ListWorkersAsync(Ct));
        await pool.StopAsync(Ct);

        Assert.Equal("hi\n", done.Result!.Stdout);
        Assert.Equal("completed", (await h.QueuedAsync(task.Id))!.State);
        // The registration carries the languages, which API processes offer (WorkerLanguageDirectory).
        Assert.Equal("w1", registered.Id);
        Assert.Equal(["python"], registered.Languages.Select(l => l.Id));
    }

    /// <summary>On shutdown, attempts still running past the grace are stopped and handed back, to be claimed again at once.</summary>
    [Fact]
    public async Task Stop_AttemptStillRunning_HandedBackPendingAtOnce()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var sandbox = new ScriptedSandbox(RunUntilStopped);
        var pool = Pool(h, sandbox, grace: TimeSpan.Zero);
        await pool.StartAsync(Ct);
        var task = await h.SubmitAsync();
        await sandbox.Started.Task.WaitAsync(Patience, Ct);

        await pool.StopAsync(Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal((TaskStatus.Pending, h.Time.GetUtcNow()), (stored.Status, stored.NextAttemptAt));
        Assert.Equal("worker shut down during the attempt", stored.Result!.Error);
        Assert.Equal(task.Id, (await h.ClaimAsync("another")).TaskId);
    }

    /// <summary>The worker finds at its heartbeat that the reaper took its attempt over: it stops the run and writes nothing.</summary>
    [Fact]
    public async Task Heartbeat_LeaseLost_RunStoppedAndNothingWritten()
    {
        await using var h = await LifecycleHarness.StartAsync(redis.Redis);
        var sandbox = new ScriptedSandbox(RunUntilStopped);
        var options = new WorkerOptions { Id = "w1", Slots = 1, HeartbeatInterval = TimeSpan.FromSeconds(5) };
        var pool = Pool(h, sandbox, options: options);
        await pool.StartAsync(Ct);
        var task = await h.SubmitAsync();
        await sandbox.Started.Task.WaitAsync(Patience, Ct);
        h.ExpireLeases();
        var reaped = Assert.Single(await h.Queue.ReapAsync(10, Ct));

        // The next heartbeat (the clock moved past it) sees the fence moved on.
        h.Time.Advance(options.HeartbeatInterval);
        await sandbox.Stopped.Task.WaitAsync(Patience, Ct);
        await pool.StopAsync(Ct);

        var stored = (await h.GetAsync(task.Id))!;
        Assert.Equal((TaskStatus.Running, null), (stored.Status, stored.Result));
        Assert.Equal(reaped.NewFence, (await h.QueuedAsync(task.Id))!.Fence);
    }

    private static async Task<ExecutionResult> RunUntilStopped(CancellationToken stop)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException)
        {
        }
        return new ExecutionResult { Verdict = Verdict.Cancelled };
    }

    private static WorkerPool Pool(LifecycleHarness h, ISandbox sandbox, TimeSpan? grace = null, WorkerOptions? options = null)
    {
        options ??= new WorkerOptions { Id = "w1", Slots = 2, ShutdownGrace = grace ?? TimeSpan.FromSeconds(20) };
        var runner = new AttemptRunner(h.Lifecycle, h.Events, sandbox, h.Metrics, h.Time, NullLogger<AttemptRunner>.Instance);
        return new WorkerPool(h.Queue, sandbox, runner, Options.Create(options), h.Time, NullLogger<WorkerPool>.Instance);
    }

    private static async Task<TaskRecord> WaitForAsync(LifecycleHarness h, Guid id, Func<TaskRecord, bool> done)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            var task = await h.GetAsync(id);
            if (task is not null && done(task))
            {
                return task;
            }
            await Task.Delay(20, timeout.Token);
        }
    }

    /// <summary>An <see cref="ISandbox"/> that runs the test's script instead of a container.</summary>
    private sealed class ScriptedSandbox(Func<CancellationToken, Task<ExecutionResult>> run) : ISandbox
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IReadOnlyList<LanguageInfo> Languages { get; } = [new LanguageInfo("python", "Python", "3", "main.py", false)];

        public async Task<ExecutionResult> RunAsync(TaskSpec spec, IOutputSink output, CancellationToken cancellationToken)
        {
            Started.TrySetResult();
            try
            {
                return await run(cancellationToken);
            }
            finally
            {
                Stopped.TrySetResult();
            }
        }
    }
}
