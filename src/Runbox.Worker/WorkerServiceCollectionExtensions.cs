using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Runbox.Lifecycle;

namespace Runbox.Worker;

public static class WorkerServiceCollectionExtensions
{
    /// <summary>The worker pool and the maintenance it may lead (reaper, reconciler). Needs a store, queue, events and sandbox.</summary>
    public static IServiceCollection AddRunboxWorker(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<WorkerOptions>().Bind(configuration.GetSection(WorkerOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddRunboxLifecycle();
        services.AddSingleton<AttemptRunner>();
        services.AddSingleton(sp => new WorkerPool(
            sp.GetRequiredService<Core.Seams.ITaskQueue>(),
            sp.GetRequiredService<Core.Seams.ISandbox>(),
            sp.GetRequiredService<AttemptRunner>(),
            sp.GetRequiredService<IOptions<WorkerOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<WorkerPool>>()));
        services.AddHostedService(sp => sp.GetRequiredService<WorkerPool>());
        services.AddSingleton<Reaper>();
        services.AddSingleton<Reconciler>();
        services.AddSingleton<Maintenance>();
        services.AddHostedService(sp => sp.GetRequiredService<Maintenance>());

        // Shutdown must outlast the pool's grace period, or the host would cut off the hand-back.
        services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
            host.ShutdownTimeout = worker.Value.ShutdownGrace + TimeSpan.FromSeconds(15));
        return services;
    }
}
