using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Api;
using Runbox.Api.Auth;
using Runbox.Api.Endpoints;
using Runbox.Core.Seams;
using Runbox.Queue;
using Runbox.Sandbox;
using Runbox.Store;
using Runbox.Worker;
using StackExchange.Redis;

namespace Runbox.Cli.Server;

public enum Role
{
    /// <summary>API and workers in one process, on the embedded defaults: the one-machine setup.</summary>
    Serve,
    Api,
    Worker,
}

/// <summary>
/// Composes the server roles from the parts. Configuration comes from appsettings.json, then
/// <c>Runbox__*</c> environment variables, then the command-line flags.
/// </summary>
public static class ServerHost
{
    public const int DefaultPort = 8080;
    public const int DefaultWorkerPort = 8081;

    /// <summary>Lets <c>runbox api</c> or <c>runbox worker</c> start on an embedded Redis or a SQLite file (a test bench; tasks do not cross processes).</summary>
    public const string AllowLocalStoresSetting = "Runbox:AllowLocalStores";

    public static async Task<int> RunAsync(Role role, string[] args, CancellationToken cancellationToken)
    {
        var flags = CommandArgs.Parse(args, [], ["port", "data", "slots", "store", "redis"]);
        if (flags.Positionals.Count > 0)
        {
            throw new UsageException($"Unexpected argument '{flags.Positionals[0]}'.");
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        var overrides = new Dictionary<string, string?>();
        if (flags.IntOption("port", 0, 65535) is { } port)
        {
            overrides["Runbox:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (flags.Option("data") is { } data)
        {
            overrides["Runbox:Data"] = data;
        }
        if (flags.IntOption("slots", 1, 4096) is { } slots)
        {
            overrides[$"{WorkerOptions.Section}:Slots"] = slots.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (flags.Option("store") is { } store)
        {
            overrides["Runbox:Store"] = store;
        }
        if (flags.Option("redis") is { } redisSetting)
        {
            overrides["Runbox:Redis"] = redisSetting;
        }
        builder.Configuration.AddInMemoryCollection(overrides);
        var config = builder.Configuration;

        var runsTasks = role is Role.Serve or Role.Worker;
        if (runsTasks)
        {
            // Before any process is started: on cgroup v2 this moves the service into a leaf of its cgroup,
            // where its children (the embedded redis-server) are then born.
            Refuse<SandboxException>(OciSandbox.CheckHost);
        }

        var storeSetting = config["Runbox:Store"] is { Length: > 0 } configuredStore ? configuredStore : null;
        if (role != Role.Serve && !config.GetValue<bool>(AllowLocalStoresSetting)
            && (string.IsNullOrWhiteSpace(config["Runbox:Redis"]) || storeSetting is null || storeSetting.StartsWith(TaskStoreFactory.SqlitePrefix, StringComparison.OrdinalIgnoreCase)))
        {
            // Each role on its own would get an embedded Redis and a SQLite file of its own: an api whose tasks
            // no worker ever sees. One machine is `runbox serve`.
            throw new UsageException(
                $"runbox {role.ToString().ToLowerInvariant()} needs the Redis (Runbox:Redis) and the PostgreSQL store (Runbox:Store) the other roles share; "
                + $"with an embedded Redis or a SQLite file each process has its own and tasks are lost. Use `runbox serve` on one machine, or set {AllowLocalStoresSetting}=true if you really mean it.");
        }

        var dataDirectory = Path.GetFullPath(config["Runbox:Data"] is { Length: > 0 } d ? d : "data", Environment.CurrentDirectory);
        Directory.CreateDirectory(dataDirectory);
        using var loggerFactory = LoggerFactory.Create(l => l.AddSimpleConsole(o => o.SingleLine = true));
        var log = loggerFactory.CreateLogger("Runbox");

        // The embedded default: our own redis-server child, persisted in the data folder.
        await using var localRedis = string.IsNullOrWhiteSpace(config["Runbox:Redis"])
            ? await LocalRedisServer.StartAsync(Path.Combine(dataDirectory, "redis"), loggerFactory.CreateLogger<LocalRedisServer>(), cancellationToken)
            : null;
        var redisConnection = localRedis?.ConnectionString ?? config["Runbox:Redis"]!;
        storeSetting ??= $"sqlite:{Path.Combine(dataDirectory, "runbox.db")}";

        var services = builder.Services;
        services.AddSingleton(TimeProvider.System);
        services.AddRunboxStore(storeSetting);
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(redisConnection);
        services.AddSingleton<IConnectionMultiplexer>(multiplexer);
        services.AddRunboxQueue(o =>
        {
            config.GetSection("Runbox:Queue").Bind(o);
            o.ConnectionString = redisConnection;
        });

        if (runsTasks)
        {
            // The one rule that crosses two parts: a worker renews its leases well within their duration.
            var heartbeat = config.GetValue<TimeSpan?>($"{WorkerOptions.Section}:HeartbeatInterval") ?? new WorkerOptions().HeartbeatInterval;
            var lease = config.GetValue<TimeSpan?>("Runbox:Queue:LeaseDuration") ?? new QueueOptions().LeaseDuration;
            if (heartbeat * 2 > lease)
            {
                throw new UsageException($"{WorkerOptions.Section}:HeartbeatInterval ({heartbeat}) must be at most half of Runbox:Queue:LeaseDuration ({lease}): a worker that renews later loses its tasks to the reaper.");
            }
            services.AddRunboxSandbox(o => o.StateDirectory = config["Runbox:Sandbox:StateDirectory"] is { Length: > 0 } state ? state : Path.Combine(dataDirectory, "sandbox"));
            services.AddRunboxWorker(config);
            services.AddSingleton<IReadinessCheck, SandboxReadinessCheck>();
        }
        if (role is Role.Serve or Role.Api)
        {
            services.AddRunboxApi(config);
            if (runsTasks)
            {
                services.AddSingleton<ILanguageDirectory, SandboxLanguageDirectory>();
            }
            else
            {
                services.AddSingleton<ILanguageDirectory, WorkerLanguageDirectory>();
            }
        }
        else
        {
            // A worker answers health and metrics only.
            services.AddRunboxHealth();
        }

        var localMode = !config.GetSection($"{AuthOptions.Section}:Keys").GetChildren().Any();
        var listenPort = config.GetValue<int?>("Runbox:Port") ?? (role == Role.Worker ? DefaultWorkerPort : DefaultPort);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Without API keys anyone who can connect is trusted, so only this machine may.
            if (localMode || role == Role.Worker && config.GetValue<bool>("Runbox:Worker:LocalOnly", true))
            {
                kestrel.ListenLocalhost(listenPort);
            }
            else
            {
                kestrel.ListenAnyIP(listenPort);
            }
            kestrel.Limits.MaxRequestBodySize = config.GetValue<long?>($"{ApiOptions.Section}:MaxBodyBytes") ?? new ApiOptions().MaxBodyBytes;
        });

        await using var app = builder.Build();
        // Settings and the sandbox are checked here, where a refusal is one line, rather than by the host's
        // start, which logs them with a stack trace.
        Refuse<OptionsValidationException>(() => app.Services.GetService<IStartupValidator>()?.Validate());
        await app.Services.GetRequiredService<SqlTaskStore>().MigrateAsync(cancellationToken);
        if (runsTasks)
        {
            try
            {
                await app.Services.GetRequiredService<OciSandbox>().InitializeAsync(cancellationToken);
            }
            catch (SandboxException e)
            {
                throw new StartupRefusedException(e.Message, e);
            }
        }
        await RedisHealth.CheckEvictionPolicyAsync(multiplexer, log, cancellationToken);
        if (role == Role.Worker)
        {
            app.MapHealthEndpoints();
        }
        else
        {
            app.MapRunboxApi();
        }

        Log.Started(log,
            role.ToString().ToLowerInvariant(), listenPort, localMode ? " (local mode: no API keys, 127.0.0.1 only)" : "",
            Describe(storeSetting), localRedis is null ? "external" : $"embedded (pid {localRedis.ProcessId})", dataDirectory);

        try
        {
            await app.RunAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // SIGTERM or Ctrl-C while the host was still starting: a clean stop, not a crash.
            Log.StoppedDuringStartup(log);
        }
        await multiplexer.CloseAsync();
        return 0;
    }

    private static void Refuse<TException>(Action check)
        where TException : Exception
    {
        try
        {
            check();
        }
        catch (TException e)
        {
            throw new StartupRefusedException(e is OptionsValidationException options ? string.Join("; ", options.Failures) : e.Message, e);
        }
    }

    /// <summary>The store setting without a password.</summary>
    private static string Describe(string storeSetting) =>
        storeSetting.StartsWith(TaskStoreFactory.SqlitePrefix, StringComparison.OrdinalIgnoreCase)
            ? storeSetting
            : "postgresql (" + string.Join(";", storeSetting.Split(';').Where(p => !p.TrimStart().StartsWith("Password", StringComparison.OrdinalIgnoreCase))) + ")";
}
