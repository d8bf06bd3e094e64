using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Runbox.Api.Auth;
using Runbox.Api.Endpoints;
using Runbox.Core.Limits;
using Runbox.Core.Metrics;
using Runbox.Core.Seams;
using Runbox.Lifecycle;

namespace Runbox.Api;

public static class ApiServiceCollectionExtensions
{
    /// <summary>The HTTP API. Needs a store, queue, events and an <see cref="ILanguageDirectory"/>.</summary>
    public static IServiceCollection AddRunboxApi(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ApiOptions>().Bind(configuration.GetSection(ApiOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<AuthOptions>().Bind(configuration.GetSection(AuthOptions.Section))
            .Validate(o => o.Keys.All(k => k.Key.Length >= 16 && k.User.Length > 0), "Every Runbox:Auth:Keys entry needs a Key of 16+ characters and a User.")
            .Validate(o => o.Keys.Select(k => k.Key).Distinct(StringComparer.Ordinal).Count() == o.Keys.Count, "Runbox:Auth:Keys has the same key twice.")
            .Validate(o => o.Keys.GroupBy(k => k.User, StringComparer.Ordinal).All(keys => keys.Select(k => k.Concurrency).Distinct().Count() == 1),
                "Runbox:Auth:Keys gives one user different Concurrency values: a user has one limit, whichever key they use.")
            .ValidateOnStart();
        services.AddOptions<UsersOptions>().Bind(configuration.GetSection(UsersOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(LimitPolicy.Default);
        services.AddRunboxHealth();
        services.AddRunboxLifecycle();
        services.AddSingleton<TaskService>();
        services.AddHostedService<UserLimitsPublisher>();

        services.ConfigureHttpJsonOptions(o => Configure(o.SerializerOptions));
        services.AddProblemDetails();
        services.AddOpenApi();
        return services;
    }

    /// <summary>
    /// What <see cref="HealthEndpoints"/> needs: the metrics and the readiness checks of the store and
    /// Redis. Every role answers health and metrics, the worker without the rest of the API.
    /// </summary>
    public static IServiceCollection AddRunboxHealth(this IServiceCollection services)
    {
        services.TryAddSingleton<RunboxMetrics>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, StoreReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, QueueReadinessCheck>());
        return services;
    }

    /// <summary>
    /// The wire format: snake_case names, unknown fields refused, numbers only as JSON numbers (the
    /// web defaults would take "256" for 256, hiding client bugs), nulls written out as in the contract.
    /// </summary>
    public static void Configure(JsonSerializerOptions options)
    {
        options.NumberHandling = JsonNumberHandling.Strict;
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
    }

    public static WebApplication MapRunboxApi(this WebApplication app)
    {
        // Redis away is a 503 the client can act on (come back); anything else unexpected is a 500 problem
        // document. Stack traces stay in the log.
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = context => context.Features.Get<IExceptionHandlerFeature>()?.Error is DispatchUnavailableException
                ? Problems.Unavailable(context, "The dispatch plane (Redis) cannot be reached right now; what was stored stands. Try again shortly.")
                : Problems.Write(context, StatusCodes.Status500InternalServerError, "Internal error", "The server failed; the error is logged."),
        });
        app.UseStatusCodePages();
        app.UseMiddleware<ApiKeyMiddleware>();
        app.MapTasksEndpoints();
        app.MapEventsEndpoints();
        app.MapQueueEndpoints();
        app.MapHealthEndpoints();
        app.MapOpenApi();
        return app;
    }
}
