using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Store;

public static class StoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the store chosen by <paramref name="storeSetting"/> (<c>sqlite:PATH</c>, or a
    /// PostgreSQL connection string) as <see cref="ITaskStore"/> and as <see cref="SqlTaskStore"/>
    /// (for <see cref="SqlTaskStore.MigrateAsync"/> at startup). Uses the registered
    /// <see cref="TimeProvider"/>, or the system clock when there is none.
    /// </summary>
    public static IServiceCollection AddRunboxStore(this IServiceCollection services, string storeSetting, Action<StoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(storeSetting);

        var options = services.AddOptions<StoreOptions>().ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(provider => TaskStoreFactory.Create(
            storeSetting,
            provider.GetRequiredService<IOptions<StoreOptions>>().Value,
            provider.GetRequiredService<TimeProvider>(),
            provider.GetService<ILoggerFactory>()));
        services.AddSingleton<ITaskStore>(provider => provider.GetRequiredService<SqlTaskStore>());
        return services;
    }
}
