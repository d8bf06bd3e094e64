using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests.Faults;

/// <summary>Redis is the dispatch plane, not the record: restarting or even emptying it loses no accepted task.</summary>
public sealed class RedisFaultTests
{
    private const int Tasks = 24;

    /// <summary>
    /// A crash (SIGKILL) with the production setting appendfsync everysec: Redis may lose its last
    /// second of writes, and the reconciler restores them from the store.
    /// </summary>
    [Fact]
    public async Task RedisKilledAndRestartedMidLoad_NothingAcceptedIsLost()
    {
        var redisDir = TestEnvironment.NewDataDirectory();
        var port = RunboxProcess.FreePort();
        var redis = await FaultEnvironment.StartRedisAsync(port, redisDir);
        try
        {
            var env = await FaultEnvironment.NewClusterAsync($"127.0.0.1:{port},abortConnect=false");
            await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "3"]);
            using var client = new ApiClient(server.BaseAddress);
            var ids = await SubmitAsync(client);
            await client.WaitForStatusAsync(ids[0], "completed", TimeSpan.FromSeconds(60));

            redis.Dispose();
            redis = await FaultEnvironment.StartRedisAsync(port, redisDir);

            await FaultEnvironment.AssertInvariantsAsync(client, ids);
            await AssertOutputsAsync(client, ids);
        }
        finally
        {
            redis.Dispose();
        }
    }

    /// <summary>
    /// A task submitted while Redis is down is in the store, so it is accepted (202, pending) rather than
    /// refused with a 500 the client would answer by submitting it again; it runs once Redis is back.
    /// Cancelling a pending task is a store write too, and stands.
    /// </summary>
    [Fact]
    public async Task RedisDown_SubmitIsAccepted_QueueViewIs503_AndTheTaskRunsWhenRedisIsBack()
    {
        var port = RunboxProcess.FreePort();
        var redis = await FaultEnvironment.StartRedisAsync(port);
        try
        {
            var env = await FaultEnvironment.NewClusterAsync($"127.0.0.1:{port},abortConnect=false");
            await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "2"]);
            using var client = new ApiClient(server.BaseAddress);
            await client.SubmitAsync(new { language = "bash", source = "echo warm" }, wait: true);

            redis.Dispose();
            var (status, body, _) = await client.SendAsync(HttpMethod.Post, "/v1/tasks", """{"language":"bash","source":"echo while down"}""");
            Assert.Equal(System.Net.HttpStatusCode.Accepted, status);
            var id = (string)body!["id"]!;
            Assert.Equal("pending", (string?)(await client.GetAsync(id))["status"]);
            // A pending task is cancelled in the store, so the cancel stands too.
            var dropped = (string)(await client.SubmitAsync(new { language = "bash", source = "echo never" }))["id"]!;
            var (cancelStatus, cancelled, _) = await client.SendAsync(HttpMethod.Post, $"/v1/tasks/{dropped}/cancel");
            Assert.Equal(System.Net.HttpStatusCode.OK, cancelStatus);
            Assert.Equal("cancelled", (string?)cancelled!["status"]);
            // What needs Redis alone is a 503 a client can act on, not a 500.
            var (queueStatus, problem, queueResponse) = await client.SendAsync(HttpMethod.Get, "/v1/queue");
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, queueStatus);
            Assert.Equal("5", queueResponse.Headers.GetValues("Retry-After").Single());
            Assert.Equal(503, (int?)problem!["status"]);

            redis = await FaultEnvironment.StartRedisAsync(port);
            var task = await client.WaitForStatusAsync(id, "completed", TimeSpan.FromSeconds(60));
            Assert.Equal("while down\n", (string?)task["result"]!["stdout"]);
            FaultEnvironment.AssertLegalPath(task);
            var never = await client.GetAsync(dropped);
            Assert.Equal("cancelled", (string?)never["status"]);
            FaultEnvironment.AssertLegalPath(never);
        }
        finally
        {
            redis.Dispose();
        }
    }

    /// <summary>
    /// The embedded default: `runbox serve` with its own redis-server child, which dies mid-load. The
    /// server starts it again on the same port with the same AOF, and every accepted task completes.
    /// </summary>
    [Fact]
    public async Task EmbeddedRedisKilledMidLoad_StartedAgain_NothingAcceptedIsLost()
    {
        var data = TestEnvironment.NewDataDirectory();
        var env = new Dictionary<string, string>
        {
            ["Runbox__Queue__LeaseDuration"] = "00:00:03",
            ["Runbox__Queue__ReapGrace"] = "00:00:00.500",
            ["Runbox__Worker__HeartbeatInterval"] = "00:00:01",
            ["Runbox__Worker__ReconcileInterval"] = "00:00:02",
        };
        await using var server = await RunboxProcess.StartAsync("serve", data, env, extraArgs: ["--slots", "3"]);
        using var client = new ApiClient(server.BaseAddress);
        var ids = await SubmitAsync(client);
        await client.WaitForStatusAsync(ids[0], "completed", TimeSpan.FromSeconds(60));

        var pid = int.Parse(await File.ReadAllTextAsync(Path.Combine(data, "redis", "redis.pid"), TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        using (var redis = System.Diagnostics.Process.GetProcessById(pid))
        {
            Assert.StartsWith("redis-server", redis.ProcessName, StringComparison.Ordinal);
            redis.Kill();
        }

        await FaultEnvironment.AssertInvariantsAsync(client, ids);
        await AssertOutputsAsync(client, ids);
        Assert.Contains("redis-server started again", server.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedisFlushedMidLoad_ReconcilerRebuildsTheQueue()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "3"]);
        using var client = new ApiClient(server.BaseAddress);
        var ids = await SubmitAsync(client);
        await client.WaitForStatusAsync(ids[0], "completed", TimeSpan.FromSeconds(60));

        // Everything under this cluster's prefix is gone: ready queues, leases, fences, counters.
        await DeleteClusterKeysAsync(env);

        await FaultEnvironment.AssertInvariantsAsync(client, ids);
        await AssertOutputsAsync(client, ids);
    }

    /// <summary>
    /// The per-user limits live in Redis only; the API sets them again after a flush. Here the local
    /// user (no limit of its own: the slots are the limit) would otherwise fall back to the queue's
    /// default of 4 and never run more than 4 of its tasks at once again.
    /// </summary>
    [Fact]
    public async Task RedisFlushed_UserLimitsAreSetAgain()
    {
        const int Slots = 6;
        var env = await FaultEnvironment.NewClusterAsync();
        env["Runbox__Queue__DefaultUserConcurrency"] = "4";
        env["Runbox__Users__LimitRefreshInterval"] = "00:00:01";
        await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", Slots.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        using var client = new ApiClient(server.BaseAddress);
        await client.SubmitAsync(new { language = "bash", source = "echo warm" }, wait: true);

        Assert.Contains($"{{{env["Runbox__Queue__KeyPrefix"]}}}:users", await DeleteClusterKeysAsync(env));

        var ids = new List<string>();
        for (var i = 0; i < Slots; i++)
        {
            ids.Add((string)(await client.SubmitAsync(new { language = "bash", source = "sleep 50", limits = new { wall_time_ms = 60000 } }))["id"]!);
        }
        try
        {
            var queue = await client.WaitForEndpointAsync("/v1/queue", q => (long?)q["running"] == Slots, TimeSpan.FromSeconds(60));
            Assert.Equal(Slots, (long?)queue["running"]);
        }
        finally
        {
            foreach (var id in ids)
            {
                await client.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");
            }
        }
        await FaultEnvironment.AssertInvariantsAsync(client, ids, "cancelled");
    }

    /// <summary>
    /// Only the hash of limits and running counts is lost while alice (limit 1) runs a task: within one
    /// refresh her limit and her running count are back, long before the reconciler's next pass, so her
    /// next task waits for the first instead of running beside it.
    /// </summary>
    [Fact]
    public async Task UsersHashLost_LimitAndRunningCountComeBackWithinARefresh()
    {
        const string Key = "alice-key-for-the-users-hash-test";
        var env = await FaultEnvironment.NewClusterAsync();
        env["Runbox__Auth__Keys__0__Key"] = Key;
        env["Runbox__Auth__Keys__0__User"] = "alice";
        env["Runbox__Auth__Keys__0__Concurrency"] = "1";
        env["Runbox__Users__LimitRefreshInterval"] = "00:00:01";
        env["Runbox__Worker__ReconcileInterval"] = "01:00:00";
        await using var server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "3"]);
        using var alice = new ApiClient(server.BaseAddress, Key);
        var first = (string)(await alice.SubmitAsync(new { language = "bash", source = "sleep 50", limits = new { wall_time_ms = 60000 } }))["id"]!;
        await alice.WaitForStatusAsync(first, "running");

        var users = $"{{{env["Runbox__Queue__KeyPrefix"]}}}:users";
        Assert.Equal("1", (await RedisCliAsync("DEL", users)).Trim());
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string held;
        while ((held = await RedisCliAsync("HMGET", users, "limit:alice", "run:alice")) != "1\n1\n")
        {
            Assert.True(DateTime.UtcNow < deadline, $"the users hash holds [{held}], not alice's limit and running count");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        var second = (string)(await alice.SubmitAsync(new { language = "bash", source = "echo second" }))["id"]!;
        // At her limit again, alice is out of the set claims take users from, so no claim can start her second
        // task; the second of waiting shows that the idle slots really leave it alone.
        Assert.Equal("", (await RedisCliAsync("ZSCORE", $"{{{env["Runbox__Queue__KeyPrefix"]}}}:eligible", "alice")).Trim());
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);
        Assert.Equal("pending", (string?)(await alice.GetAsync(second))["status"]);

        await alice.SendAsync(HttpMethod.Post, $"/v1/tasks/{first}/cancel");
        await FaultEnvironment.AssertInvariantsAsync(alice, [first], "cancelled");
        await FaultEnvironment.AssertInvariantsAsync(alice, [second]);
    }

    /// <summary>
    /// The multi-machine shape loses everything in Redis, the workers' registrations and the languages they
    /// carry too: the API (which has no toolchains of its own) must learn them again, or it refuses every task
    /// as an unknown language. Workers register again with every heartbeat.
    /// </summary>
    [Fact]
    public async Task RedisFlushed_SplitRoles_LanguagesAnnouncedAgain()
    {
        var env = await FaultEnvironment.NewClusterAsync();
        await using var worker = await RunboxProcess.StartAsync("worker", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "2"]);
        await using var api = await RunboxProcess.StartAsync("api", TestEnvironment.NewDataDirectory(), env);
        using var client = new ApiClient(api.BaseAddress);
        await client.SubmitAsync(new { language = "bash", source = "echo before" }, wait: true);

        Assert.Contains($"{{{env["Runbox__Queue__KeyPrefix"]}}}:workers", await DeleteClusterKeysAsync(env));

        await client.WaitForEndpointAsync("/v1/languages", l => l.AsArray().Any(language => (string?)language!["id"] == "bash"), TimeSpan.FromSeconds(20));
        var task = await client.SubmitAsync(new { language = "bash", source = "echo after" }, wait: true);
        Assert.Equal("after\n", (string?)task["result"]!["stdout"]);
    }

    /// <summary>
    /// Deletes every key of this cluster's prefix, one at a time while the service runs, the task records
    /// last: whatever is claimed after the running counts went loses its record before it can end, the
    /// worst order for the counts. Returns the keys.
    /// </summary>
    private static async Task<string[]> DeleteClusterKeysAsync(Dictionary<string, string> env)
    {
        var keys = (await RedisCliAsync("--scan", "--pattern", $"*{env["Runbox__Queue__KeyPrefix"]}*"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .OrderBy(key => key.Contains("}:t:", StringComparison.Ordinal))
            .ToArray();
        foreach (var key in keys)
        {
            await RedisCliAsync("DEL", key);
        }
        return keys;
    }

    /// <summary>redis-cli against the shared test Redis.</summary>
    private static Task<string> RedisCliAsync(params string[] args)
    {
        var (host, port) = (TestEnvironment.Redis.Split(':')[0], TestEnvironment.Redis.Split(':')[1]);
        return FaultEnvironment.RunAsync("redis-cli", ["-h", host, "-p", port, .. args]);
    }

    private static async Task<List<string>> SubmitAsync(ApiClient client)
    {
        var ids = new List<string>();
        for (var i = 0; i < Tasks; i++)
        {
            ids.Add((string)(await client.SubmitAsync(new { language = "bash", source = $"sleep 0.3; echo {i}" }))["id"]!);
        }
        return ids;
    }

    private static async Task AssertOutputsAsync(ApiClient client, List<string> ids)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            Assert.Equal($"{i}\n", (string?)(await client.GetAsync(ids[i]))["result"]!["stdout"]);
        }
    }
}
