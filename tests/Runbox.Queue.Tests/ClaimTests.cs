using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Queue.Tests;

public sealed class ClaimTests(RedisFixture redis)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Claim_MixedPrioritiesAndUsers_StrictPriorityThenFifo()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 100);
        var a5 = await h.EnqueueAsync("alice", 5);
        var b9 = await h.EnqueueAsync("bob", 9);
        var c0 = await h.EnqueueAsync("carol", 0);
        var a9 = await h.EnqueueAsync("alice", 9);
        var b5 = await h.EnqueueAsync("bob", 5);
        var c5 = await h.EnqueueAsync("carol", 5);

        var claimed = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            // One at a time and in batches must agree.
            claimed.AddRange((await h.Queue.ClaimAsync("w", i % 2 + 1, Token)).Select(l => l.TaskId));
        }

        Assert.Equal([b9.TaskId, a9.TaskId, a5.TaskId, b5.TaskId, c5.TaskId, c0.TaskId], claimed);
    }

    [Fact]
    public async Task Claim_BatchOfN_ReturnsLeasesWithFenceAttemptAndDeadline()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 10);
        for (var i = 0; i < 5; i++)
        {
            await h.EnqueueAsync("alice");
        }

        var leases = await h.Queue.ClaimAsync("w", 3, Token);

        Assert.Equal(3, leases.Count);
        Assert.All(leases, l =>
        {
            Assert.Equal("alice", l.User);
            Assert.Equal(1, l.Fence);
            Assert.Equal(1, l.Attempt);
            Assert.Equal(QueueHarness.Start + h.Options.LeaseDuration, l.LeaseUntil);
        });
        Assert.Equal(2, (await h.Queue.ClaimAsync("w", 10, Token)).Count);
        Assert.Empty(await h.Queue.ClaimAsync("w", 10, Token));
    }

    [Fact]
    public async Task Claim_CappedUserWithManyWaiting_OtherUsersStillClaimed()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 2);
        for (var i = 0; i < 50; i++)
        {
            await h.EnqueueAsync("hog", 9);
        }
        var other = await h.EnqueueAsync("bob", 0);

        var first = await h.Queue.ClaimAsync("w", 10, Token);

        Assert.Equal(3, first.Count);
        Assert.Equal(2, first.Count(l => l.User == "hog"));
        Assert.Contains(first, l => l.TaskId == other.TaskId);
        Assert.Empty(await h.Queue.ClaimAsync("w", 10, Token));
    }

    [Fact]
    public async Task Finish_UserAtLimit_FreesSlotForTheirNextTask()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 1);
        await h.EnqueueAsync("alice");
        var second = await h.EnqueueAsync("alice");
        var lease = await h.ClaimOneAsync();
        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));

        Assert.True(await h.Queue.FinishAsync(lease, new AttemptOutcome(OutcomeKind.Completed, TaskStatus.Completed), Token));

        Assert.Equal(second.TaskId, (await h.ClaimOneAsync()).TaskId);
    }

    [Fact]
    public async Task SetUserLimit_ChangedAtRunTime_AppliesToNextClaim()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 1);
        for (var i = 0; i < 5; i++)
        {
            await h.EnqueueAsync("alice");
        }
        Assert.Single(await h.Queue.ClaimAsync("w", 5, Token));

        await h.Queue.SetUserLimitAsync("alice", 3, Token);
        Assert.Equal(2, (await h.Queue.ClaimAsync("w", 5, Token)).Count);

        await h.Queue.SetUserLimitAsync("alice", 0, Token);
        await h.Queue.SetUserLimitAsync("alice", null, Token);
        Assert.Empty(await h.Queue.ClaimAsync("w", 5, Token));
        await h.Queue.SetUserLimitAsync("alice", 4, Token);
        Assert.Single(await h.Queue.ClaimAsync("w", 5, Token));
    }

    [Fact]
    public async Task SetUserLimit_TellsWhetherItChangedAnything_AndPutsALostLimitBack()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 1);
        for (var i = 0; i < 3; i++)
        {
            await h.EnqueueAsync("alice");
        }
        Assert.True(await h.Queue.SetUserLimitAsync("alice", 2, Token));
        Assert.False(await h.Queue.SetUserLimitAsync("alice", 2, Token));
        Assert.Single(await h.Queue.ClaimAsync("w", 1, Token));

        // Redis lost the users hash, her limit with it: setting it again is a change, and claims see
        // the limit of 2 again, not the default of 1. (Her running count went too, so both remaining
        // tasks are let through; the reconciler's recount mends that, see RepairTests.)
        await h.Database.KeyDeleteAsync(h.Keys.Users);
        Assert.True(await h.Queue.SetUserLimitAsync("alice", 2, Token));
        Assert.Equal(2, (await h.Queue.ClaimAsync("w", 5, Token)).Count);

        Assert.True(await h.Queue.SetUserLimitAsync("alice", null, Token));
        Assert.False(await h.Queue.SetUserLimitAsync("alice", null, Token));
    }

    [Fact]
    public async Task Claim_DelayedTask_ClaimableOnlyOnceDue()
    {
        await using var h = new QueueHarness(redis.Redis);
        var item = await h.EnqueueAsync("alice", change: i => i with { RunAt = QueueHarness.Start.AddSeconds(10) });

        Assert.Empty(await h.Queue.ClaimAsync("w", 1, Token));
        Assert.Equal(1, (await h.Queue.GetStatsAsync(Token)).Delayed);

        h.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(item.TaskId, (await h.ClaimOneAsync()).TaskId);
    }

    [Fact]
    public async Task Claim_SixteenConcurrentClaimers_NoTaskClaimedTwice()
    {
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 1000);
        var ids = new HashSet<Guid>();
        for (var i = 0; i < 400; i++)
        {
            ids.Add((await h.EnqueueAsync("u" + (i % 7), i % 10)).TaskId);
        }

        var claims = await Task.WhenAll(Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            var mine = new List<Guid>();
            while (true)
            {
                var leases = await h.Queue.ClaimAsync("w" + w, 1 + (w % 4), Token);
                if (leases.Count == 0)
                {
                    return mine;
                }
                mine.AddRange(leases.Select(l => l.TaskId));
            }
        }, Token)));

        var all = claims.SelectMany(c => c).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.True(ids.SetEquals(all));
    }

    [Fact]
    public async Task Claim_RandomizedConcurrentRun_UserLimitNeverExceeded()
    {
        const int Claimers = 16;
        var random = new Random(20260101);
        var limits = new Dictionary<string, int> { ["u0"] = 1, ["u1"] = 2, ["u2"] = 3, ["u3"] = 5, ["u4"] = 8 };
        await using var h = new QueueHarness(redis.Redis, o => o.DefaultUserConcurrency = 3);
        foreach (var (user, limit) in limits)
        {
            await h.Queue.SetUserLimitAsync(user, limit, Token);
        }
        for (var i = 0; i < 300; i++)
        {
            await h.EnqueueAsync("u" + random.Next(limits.Count), random.Next(10));
        }

        var held = Enumerable.Range(0, Claimers).Select(_ => new List<Lease>()).ToArray();
        var finished = 0;
        for (var step = 0; step < 60; step++)
        {
            var seeds = Enumerable.Range(0, Claimers).Select(_ => random.Next()).ToArray();
            await Task.WhenAll(Enumerable.Range(0, Claimers).Select(c => Task.Run(async () =>
            {
                var local = new Random(seeds[c]);
                var mine = held[c];
                if (mine.Count > 0 && local.Next(3) == 0)
                {
                    var lease = mine[local.Next(mine.Count)];
                    mine.Remove(lease);
                    var outcome = local.Next(4) == 0
                        ? new AttemptOutcome(OutcomeKind.Retry, TaskStatus.Failed)
                        : new AttemptOutcome(OutcomeKind.Completed, TaskStatus.Completed);
                    Assert.True(await h.Queue.FinishAsync(lease, outcome, Token));
                    Interlocked.Increment(ref finished);
                }
                else
                {
                    mine.AddRange(await h.Queue.ClaimAsync("w" + c, 1 + local.Next(3), Token));
                }
            }, Token)));

            var running = await h.RunningCountsAsync();
            var leased = await h.LeasesPerUserAsync();
            Assert.Equal(leased.OrderBy(p => p.Key), running.OrderBy(p => p.Key));
            var heldNow = held.SelectMany(m => m).ToList();
            Assert.Equal(heldNow.Count, heldNow.Select(l => l.TaskId).Distinct().Count());
            foreach (var (user, count) in running)
            {
                var holders = heldNow.Count(l => l.User == user);
                Assert.Equal(holders, count);
                Assert.True(count <= limits[user], $"{user} runs {count} at step {step}, limit {limits[user]}");
            }
        }
        Assert.True(finished > 50, $"only {finished} finishes: the run did not exercise the gate");
    }
}
