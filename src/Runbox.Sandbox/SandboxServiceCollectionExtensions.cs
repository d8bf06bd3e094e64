using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Runbox.Core.Seams;

namespace Runbox.Sandbox;

public static class SandboxServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="OciSandbox"/> as the <see cref="ISandbox"/>, bound to <c>Runbox:Sandbox</c>, and
    /// starts it with the host so a host that cannot run containers fails at startup, not at the first task.
    /// </summary>
    public static IServiceCollection AddRunboxSandbox(this IServiceCollection services, Action<SandboxOptions>? configure = null)
    {
        var options = services.AddOptions<SandboxOptions>()
            .BindConfiguration(SandboxOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<OciSandbox>();
        services.TryAddSingleton<ISandbox>(provider => provider.GetRequiredService<OciSandbox>());
        services.AddHostedService<SandboxStartup>();
        return services;
    }

    private sealed class SandboxStartup(OciSandbox sandbox) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => sandbox.InitializeAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
