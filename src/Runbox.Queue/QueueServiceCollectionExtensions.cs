using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;
using StackExchange.Redis;

namespace Runbox.Queue;

public static class QueueServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ITaskQueue"/> and <see cref="ITaskEvents"/> on Redis with validated
    /// <see cref="QueueOptions"/>. An <see cref="IConnectionMultiplexer"/> already registered is used;
    /// otherwise one is connected from <see cref="QueueOptions.ConnectionString"/>.
    /// </summary>
    public static IServiceCollection AddRunboxQueue(this IServiceCollection services, Action<QueueOptions> configure)
    {
        services.AddOptions<QueueOptions>()
            .Configure(configure)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IConnectionMultiplexer>(provider =>
            ConnectionMultiplexer.Connect(provider.GetRequiredService<IOptions<QueueOptions>>().Value.ConnectionString));
        services.TryAddSingleton<RedisTaskQueue>();
        services.TryAddSingleton<ITaskQueue>(provider => provider.GetRequiredService<RedisTaskQueue>());
        services.TryAddSingleton<RedisTaskEvents>();
        services.TryAddSingleton<ITaskEvents>(provider => provider.GetRequiredService<RedisTaskEvents>());
        return services;
    }
}
