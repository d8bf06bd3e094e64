using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>A configuration the service cannot honour stops it at start, with the reason.</summary>
public sealed class ConfigurationTests
{
    [Fact]
    public async Task Start_OneUserWithTwoLimits_RefusedWithTheReason()
    {
        var env = new Dictionary<string, string>
        {
            ["Runbox__Auth__Keys__0__Key"] = "key-one-of-alice-0123456789",
            ["Runbox__Auth__Keys__0__User"] = "alice",
            ["Runbox__Auth__Keys__0__Concurrency"] = "1",
            ["Runbox__Auth__Keys__1__Key"] = "key-two-of-alice-0123456789",
            ["Runbox__Auth__Keys__1__User"] = "alice",
            ["Runbox__Auth__Keys__1__Concurrency"] = "5",
        };

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env));

        Assert.Contains("gives one user different Concurrency values", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>An api or a worker on an embedded Redis or a SQLite file would each have its own, and lose the tasks the others see.</summary>
    [Theory]
    [InlineData("worker", false)]
    [InlineData("api", true)]
    public async Task Start_SplitRoleOnLocalStores_RefusedWithTheReason(string role, bool sharedRedis)
    {
        var env = sharedRedis ? TestEnvironment.SharedRedis("e2e-local-" + Guid.NewGuid().ToString("N")[..8]) : [];

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => RunboxProcess.StartAsync(role, TestEnvironment.NewDataDirectory(), env));

        Assert.Contains($"runbox {role} needs the Redis (Runbox:Redis) and the PostgreSQL store (Runbox:Store)", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_HeartbeatNotWellWithinTheLease_RefusedWithTheReason()
    {
        var env = new Dictionary<string, string> { ["Runbox__Worker__HeartbeatInterval"] = "00:00:20", ["Runbox__Queue__LeaseDuration"] = "00:00:30" };

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env));

        Assert.Contains("HeartbeatInterval (00:00:20) must be at most half of Runbox:Queue:LeaseDuration", refused.Message, StringComparison.Ordinal);
    }
}
