namespace Runbox.Queue.Tests;

/// <summary>The maintenance lead (lead.lua): one holder at a time, on the callers' clock.</summary>
public sealed class MaintenanceLeadTests(RedisFixture redis)
{
    private static readonly TimeSpan Term = TimeSpan.FromSeconds(10);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TryLead_FirstCandidate_LeadsAndRenews_OthersDoNot()
    {
        await using var h = new QueueHarness(redis.Redis);

        Assert.True(await h.Queue.TryLeadMaintenanceAsync("w1", Term, Token));
        Assert.False(await h.Queue.TryLeadMaintenanceAsync("w2", Term, Token));
        h.Time.Advance(Term - TimeSpan.FromSeconds(1));
        Assert.True(await h.Queue.TryLeadMaintenanceAsync("w1", Term, Token));
        h.Time.Advance(Term - TimeSpan.FromSeconds(1));
        Assert.False(await h.Queue.TryLeadMaintenanceAsync("w2", Term, Token));
    }

    [Fact]
    public async Task TryLead_LeaderStoppedRenewing_AnotherLeadsOnceTheTermRanOut()
    {
        await using var h = new QueueHarness(redis.Redis);
        Assert.True(await h.Queue.TryLeadMaintenanceAsync("w1", Term, Token));

        h.Time.Advance(Term - TimeSpan.FromMilliseconds(1));
        Assert.False(await h.Queue.TryLeadMaintenanceAsync("w2", Term, Token));
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(await h.Queue.TryLeadMaintenanceAsync("w2", Term, Token));
        Assert.False(await h.Queue.TryLeadMaintenanceAsync("w1", Term, Token));
    }

    [Fact]
    public async Task Release_ByTheHolder_AnotherLeadsAtOnce_ByAnotherChangesNothing()
    {
        await using var h = new QueueHarness(redis.Redis);
        Assert.True(await h.Queue.TryLeadMaintenanceAsync("w1", Term, Token));

        await h.Queue.ReleaseMaintenanceAsync("w2", Token);
        Assert.False(await h.Queue.TryLeadMaintenanceAsync("w2", Term, Token));
        await h.Queue.ReleaseMaintenanceAsync("w1", Token);
        Assert.True(await h.Queue.TryLeadMaintenanceAsync("w2", Term, Token));
    }
}
