using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Runbox.Lifecycle;

namespace Runbox.Worker.Tests;

/// <summary>An attempt's deadline leaves compiling as long as the sandbox lets a compile run.</summary>
public sealed class LifecycleOptionsTests
{
    [Theory]
    [InlineData(null, null, 60)]
    [InlineData("00:00:20", null, 60)]
    // Regression: with the compile limit raised to 90 s, the reaper timed compiles out after a fixed 60 s.
    [InlineData("00:01:30", null, 90)]
    [InlineData("00:01:30", "00:02:00", 120)]
    [InlineData("00:01:30", "00:00:45", 45)]
    public void CompileAllowance_FollowsTheCompileWallTimeUnlessSet(string? compileWallTime, string? allowance, int expectedSeconds)
    {
        var settings = new Dictionary<string, string?>();
        if (compileWallTime is not null)
        {
            settings["Runbox:Sandbox:Compile:WallTime"] = compileWallTime;
        }
        if (allowance is not null)
        {
            settings["Runbox:Lifecycle:CompileAllowance"] = allowance;
        }
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddRunboxLifecycle();
        using var provider = services.BuildServiceProvider();

        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), provider.GetRequiredService<IOptions<LifecycleOptions>>().Value.CompileAllowance);
    }
}
