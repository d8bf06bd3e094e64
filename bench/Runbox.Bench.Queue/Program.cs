using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Queue;
using StackExchange.Redis;

// Queue benchmark: the SET ceiling from redis-benchmark, then enqueue and enqueue → claim → finish
// rates with 16 concurrent clients, then claim cost with and without 10,000 tasks waiting behind
// capped users, all against one server in one run.
//   dotnet run -c Release --project bench/Runbox.Bench.Queue [-- --redis HOST:PORT] [--tasks N]
// Without --redis it starts a LocalRedisServer (AOF everysec, the embedded default) in a temp folder.

const int Clients = 16;
const int Batch = 32;
const int CappedUsers = 100;
const int WaitingPerCappedUser = 100;
const int ClaimSamples = 2_000;

var redisArgument = Option("--redis");
var tasks = int.Parse(Option("--tasks") ?? "20000", CultureInfo.InvariantCulture);

LocalRedisServer? local = null;
string? dataDirectory = null;
if (redisArgument is null)
{
    dataDirectory = Path.Combine(Path.GetTempPath(), "runbox-bench-queue-" + Guid.NewGuid().ToString("N")[..8]);
    local = await LocalRedisServer.StartAsync(dataDirectory, NullLogger.Instance, CancellationToken.None);
}
var connectionString = redisArgument ?? local!.ConnectionString;
try
{
    await using var redis = await ConnectionMultiplexer.ConnectAsync(connectionString);
    var server = redis.GetServers()[0];
    Console.WriteLine($"redis {server.Version} at {server.EndPoint}; {Environment.ProcessorCount} cores; {tasks} tasks; {Clients} clients");

    var ceiling = RunRedisBenchmark(connectionString);
    Console.WriteLine($"SET ceiling (redis-benchmark -t set -c {Clients} -n 100000 -q): {ceiling:N0} ops/s");

    var clientCeiling = await ClientSetRateAsync(redis);
    Console.WriteLine($"SET from this client (StackExchange.Redis, {Clients} clients, one key per call): {clientCeiling:N0} ops/s");

    // Warm-up, not measured: JIT, connection pools and the server's script cache.
    await EnqueueRateAsync(redis, 2_000, batch: 1);
    await CycleRateAsync(redis, 2_000);

    var enqueueRate = await EnqueueRateAsync(redis, tasks, batch: 1);
    Console.WriteLine($"enqueue, one task per call: {enqueueRate:N0} tasks/s ({enqueueRate / ceiling:P0} of SET)");
    var batchedRate = await EnqueueRateAsync(redis, tasks, Batch);
    Console.WriteLine($"enqueue, {Batch} tasks per call: {batchedRate:N0} tasks/s ({batchedRate / ceiling:P0} of SET)");

    var cycleRate = await CycleRateAsync(redis, tasks);
    Console.WriteLine($"enqueue → claim → finish: {cycleRate:N0} tasks/s ({cycleRate / ceiling:P0} of SET)");

    var (emptyMean, emptyP99) = await ClaimCostAsync(redis, cappedWaiting: false);
    var (cappedMean, cappedP99) = await ClaimCostAsync(redis, cappedWaiting: true);
    Console.WriteLine($"claim, 0 waiting behind capped users: mean {emptyMean:F0} µs, p99 {emptyP99:F0} µs");
    Console.WriteLine($"claim, {CappedUsers * WaitingPerCappedUser:N0} waiting behind capped users: mean {cappedMean:F0} µs, p99 {cappedP99:F0} µs");
}
finally
{
    if (local is not null)
    {
        await local.DisposeAsync();
        Directory.Delete(dataDirectory!, recursive: true);
    }
}

string? Option(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

static double RunRedisBenchmark(string connectionString)
{
    var configuration = ConfigurationOptions.Parse(connectionString);
    var (host, port) = configuration.EndPoints[0] switch
    {
        IPEndPoint ip => (ip.Address.ToString(), ip.Port),
        DnsEndPoint dns => (dns.Host, dns.Port),
        var other => throw new InvalidOperationException($"redis-benchmark cannot reach {other}."),
    };
    var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var argument in new[] { "-h", host, "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "set", "-c", "16", "-n", "100000", "-q" })
    {
        start.ArgumentList.Add(argument);
    }
    if (configuration.Password is { Length: > 0 } password)
    {
        start.ArgumentList.Add("-a");
        start.ArgumentList.Add(password);
    }
    using var process = Process.Start(start) ?? throw new InvalidOperationException("redis-benchmark did not start.");
    var output = process.StandardOutput.ReadToEnd();
    process.WaitForExit();
    var match = Regex.Match(output, @"SET: ([\d.]+) requests per second");
    return match.Success
        ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"Unexpected redis-benchmark output: {output}{process.StandardError.ReadToEnd()}");
}

static (RedisTaskQueue Queue, string KeyPrefix) NewQueue(IConnectionMultiplexer redis, int userConcurrency)
{
    var options = new QueueOptions
    {
        ConnectionString = redis.Configuration,
        KeyPrefix = "bench-" + Guid.NewGuid().ToString("N")[..8],
        DefaultUserConcurrency = userConcurrency,
    };
    return (new RedisTaskQueue(redis, Options.Create(options), TimeProvider.System, NullLogger<RedisTaskQueue>.Instance), options.KeyPrefix);
}

static QueueItem Item(int i) => new(Guid.NewGuid(), "user" + (i % 64), i % 10);

// The same 16-client shape doing plain SETs: what this client library reaches on this machine
// before any script runs, next to redis-benchmark's C client.
static async Task<double> ClientSetRateAsync(IConnectionMultiplexer redis)
{
    const int Sets = 100_000;
    var database = redis.GetDatabase();
    RedisKey key = "bench-set-" + Guid.NewGuid().ToString("N")[..8];
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
    {
        for (var i = client; i < Sets; i += Clients)
        {
            await database.StringSetAsync(key, i);
        }
    })));
    var rate = Sets / clock.Elapsed.TotalSeconds;
    await database.KeyDeleteAsync(key);
    return rate;
}

// Each client enqueues its share, `batch` tasks per call; the multiplexer pipelines the 16 clients.
static async Task<double> EnqueueRateAsync(IConnectionMultiplexer redis, int tasks, int batch)
{
    var (queue, prefix) = NewQueue(redis, 1_000);
    await using var disposeQueue = queue;
    await queue.EnqueueAsync(Item(0), CancellationToken.None);
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
    {
        var share = Enumerable.Range(0, tasks).Where(i => i % Clients == client).Select(Item).ToList();
        foreach (var chunk in share.Chunk(batch))
        {
            if (batch == 1)
            {
                await queue.EnqueueAsync(chunk[0], CancellationToken.None);
            }
            else
            {
                await queue.EnqueueManyAsync(chunk, CancellationToken.None);
            }
        }
    })));
    var rate = tasks / clock.Elapsed.TotalSeconds;
    await CleanAsync(redis, prefix);
    return rate;
}

// Each client enqueues a batch of its tasks in one call, claims a batch in one call, and finishes
// what it claimed one call per task (as workers do), those calls in flight together, until every
// task is finished.
static async Task<double> CycleRateAsync(IConnectionMultiplexer redis, int tasks)
{
    var (queue, prefix) = NewQueue(redis, 1_000);
    await using var disposeQueue = queue;
    var finished = 0;
    var completed = new AttemptOutcome(OutcomeKind.Completed, TaskStatus.Completed);
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
    {
        var share = Enumerable.Range(0, tasks).Where(i => i % Clients == client).ToList();
        var next = 0;
        while (Volatile.Read(ref finished) < tasks)
        {
            var batch = share.Skip(next).Take(Batch).Select(Item).ToList();
            next += batch.Count;
            await queue.EnqueueManyAsync(batch, CancellationToken.None);
            var leases = await queue.ClaimAsync("worker" + client, Batch, CancellationToken.None);
            var results = await Task.WhenAll(leases.Select(lease => queue.FinishAsync(lease, completed, CancellationToken.None)));
            if (results.Any(ok => !ok))
            {
                throw new InvalidOperationException("A fresh lease was refused.");
            }
            Interlocked.Add(ref finished, leases.Count);
        }
    })));
    var rate = tasks / clock.Elapsed.TotalSeconds;
    await CleanAsync(redis, prefix);
    return rate;
}

// Sequential single claims by a free user, optionally with capped users holding 10,000 waiting tasks.
static async Task<(double MeanMicroseconds, double P99Microseconds)> ClaimCostAsync(IConnectionMultiplexer redis, bool cappedWaiting)
{
    var (queue, prefix) = NewQueue(redis, 1);
    await using var disposeQueue = queue;
    var none = CancellationToken.None;
    if (cappedWaiting)
    {
        var pending = new List<Task>();
        for (var u = 0; u < CappedUsers; u++)
        {
            for (var t = 0; t < WaitingPerCappedUser; t++)
            {
                pending.Add(queue.EnqueueAsync(new QueueItem(Guid.NewGuid(), "capped" + u, 9), none));
            }
        }
        await Task.WhenAll(pending);
        // Each capped user now runs one task (their limit) and has 99 more waiting, all at priority 9.
        while ((await queue.ClaimAsync("holder", 100, none)).Count > 0)
        {
        }
    }
    await queue.SetUserLimitAsync("free", ClaimSamples, none);
    await Task.WhenAll(Enumerable.Range(0, ClaimSamples).Select(_ => queue.EnqueueAsync(new QueueItem(Guid.NewGuid(), "free", 0), none)));
    var samples = new double[ClaimSamples];
    for (var i = 0; i < ClaimSamples; i++)
    {
        var clock = Stopwatch.StartNew();
        var lease = await queue.ClaimAsync("worker", 1, none);
        samples[i] = clock.Elapsed.TotalMicroseconds;
        if (lease.Count != 1 || lease[0].User != "free")
        {
            throw new InvalidOperationException("The free user's task was not claimed.");
        }
    }
    await CleanAsync(redis, prefix);
    Array.Sort(samples);
    return (samples.Average(), samples[(int)(samples.Length * 0.99)]);
}

static async Task CleanAsync(IConnectionMultiplexer redis, string keyPrefix)
{
    var prefix = "{" + keyPrefix + "}:";
    var server = redis.GetServers()[0];
    var database = redis.GetDatabase();
    await foreach (var key in server.KeysAsync(pattern: prefix + "*", pageSize: 1000))
    {
        await database.KeyDeleteAsync(key, CommandFlags.FireAndForget);
    }
}
