using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Runbox.Queue;

/// <summary>
/// Lets any number of callers in this process wait for work without polling: one loop blocks on
/// BZPOPMIN of the marker key (scripts add the marker when a task becomes claimable) and wakes every
/// caller waiting at that moment. A blocking command would stall a shared multiplexer, so the loop
/// has a connection of its own. It runs only while someone waits; an idle queue costs Redis one
/// blocked command every <see cref="BlockTime"/>.
/// </summary>
internal sealed class MarkerWaiter(Func<Task<IConnectionMultiplexer>> connect, RedisKey marker, TimeProvider time, ILogger logger) : IAsyncDisposable
{
    public static readonly TimeSpan BlockTime = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly Lock gate = new();
    private readonly CancellationTokenSource stopping = new();
    private TaskCompletionSource signal = NewSignal();
    private int waiters;
    private Task? loop;
    private Task<IConnectionMultiplexer>? connection;

    public async Task WaitAsync(TimeSpan maxWait, CancellationToken cancellationToken)
    {
        Task woken;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(stopping.IsCancellationRequested, this);
            waiters++;
            woken = signal.Task;
            loop ??= Task.Run(RunAsync, CancellationToken.None);
        }
        try
        {
            await woken.WaitAsync(maxWait, time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // maxWait passed without work: the caller claims anyway (delayed tasks may be due).
        }
        finally
        {
            lock (gate)
            {
                waiters--;
            }
        }
    }

    private async Task RunAsync()
    {
        while (true)
        {
            try
            {
                connection ??= connect();
                var database = (await connection.WaitAsync(stopping.Token)).GetDatabase();
                var popped = await database.ExecuteAsync("BZPOPMIN", marker, BlockTime.TotalSeconds).WaitAsync(stopping.Token);
                lock (gate)
                {
                    if (!popped.IsNull && waiters > 0)
                    {
                        var woken = signal;
                        signal = NewSignal();
                        woken.TrySetResult();
                    }
                    else if (!popped.IsNull)
                    {
                        // Nobody here wanted it: hand the wake-up back for the next waiter (here or elsewhere).
                        database.SortedSetAdd(marker, "0", 0, CommandFlags.FireAndForget);
                    }
                    if (waiters == 0)
                    {
                        loop = null;
                        return;
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                Log.WaitFailed(logger, e);
                if (connection is { IsFaulted: true })
                {
                    connection = null;
                }
                // Waiters fall back to their own maxWait; do not spin while Redis is away.
                try
                {
                    await Task.Delay(RetryDelay, time, stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? running;
        lock (gate)
        {
            if (stopping.IsCancellationRequested)
            {
                return;
            }
            stopping.Cancel();
            running = loop;
        }
        if (running is not null)
        {
            await running;
        }
        if (connection is { IsCompletedSuccessfully: true })
        {
            await connection.Result.DisposeAsync();
        }
        stopping.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
