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
        services.AddOptions<LifecycleOptions>().BindConfiguration(LifecycleOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<RunboxMetrics>();
        services.TryAddSingleton<TaskLifecycle>();
        return services;
    }
}
