using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Runbox.Core.Metrics;

namespace Runbox.Lifecycle;

public static class LifecycleServiceCollectionExtensions
{
    /// <summary>
    /// The lifecycle engine, bound to <c>Runbox:Lifecycle</c>, and the process's metrics. Needs a store, a queue
    /// and events.
    /// </summary>
    public static IServiceCollection AddRunboxLifecycle(this IServiceCollection services)
    {
        services.AddOptions<LifecycleOptions>().BindConfiguration(LifecycleOptions.SectionName)
            .Configure<IServiceProvider>((options, provider) =>
            {
                // The one setting of another part the deadline depends on (see LifecycleOptions.CompileAllowance).
                var config = provider.GetService<IConfiguration>();
                if (config?[$"{LifecycleOptions.SectionName}:{nameof(LifecycleOptions.CompileAllowance)}"] is not { Length: > 0 }
                    && config?.GetValue<TimeSpan?>("Runbox:Sandbox:Compile:WallTime") is { } compileWallTime && compileWallTime > options.CompileAllowance)
                {
                    options.CompileAllowance = compileWallTime;
                }
            })
            .ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<RunboxMetrics>();
        services.TryAddSingleton<TaskLifecycle>();
        return services;
    }
}
