using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Sandbox.Tests;

public class SandboxOptionsTests
{
    [Fact]
    public async Task AddRunboxSandbox_DefaultOptions_ResolvesOciSandboxAsISandbox()
    {
        await using var provider = Services(new Dictionary<string, string?>()).BuildServiceProvider();

        Assert.IsType<OciSandbox>(provider.GetRequiredService<ISandbox>());
        Assert.Same(provider.GetRequiredService<OciSandbox>(), provider.GetRequiredService<ISandbox>());
    }

    [Theory]
    [InlineData("Runbox:Sandbox:Runtime", "docker")]
    [InlineData("Runbox:Sandbox:UidRangeStart", "1000")]
    [InlineData("Runbox:Sandbox:UidRangeStart", "2147400000")]
    [InlineData("Runbox:Sandbox:GracePeriod", "00:05:00")]
    [InlineData("Runbox:Sandbox:Compile:Processes", "1")]
    public void AddRunboxSandbox_InvalidSetting_FailsValidation(string key, string value)
    {
        using var provider = Services(new Dictionary<string, string?> { [key] = value }).BuildServiceProvider();

        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<SandboxOptions>>().Value);
    }

    private static ServiceCollection Services(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddLogging();
        services.AddRunboxSandbox();
        return services;
    }
}
