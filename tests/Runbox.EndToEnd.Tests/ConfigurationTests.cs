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
}
