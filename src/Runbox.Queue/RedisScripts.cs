using System.Reflection;
using Microsoft.Extensions.Logging;
using Runbox.Core.Seams;
using StackExchange.Redis;

namespace Runbox.Queue;

/// <summary>
/// The Lua scripts embedded in this assembly, loaded once into every primary (SCRIPT LOAD) and then
/// called by SHA. A server that lost its script cache (restart, failover, SCRIPT FLUSH) answers
/// NOSCRIPT: the scripts are loaded again and the call is repeated, which is safe because every
/// script is idempotent. Every call is checked against its script's declared arguments
/// (<see cref="ScriptArguments"/>) before it is sent.
/// </summary>
internal sealed class RedisScripts
{
    private const string PreludeName = "common";

    private readonly IConnectionMultiplexer redis;
    private readonly ILogger logger;
    private readonly Dictionary<string, Script> scripts;
    private readonly Lock gate = new();
    private Task? loading;

    public RedisScripts(IConnectionMultiplexer redis, ILogger logger, IEnumerable<string> withPrelude, IEnumerable<string> standalone)
    {
        this.redis = redis;
        this.logger = logger;
        var prelude = ReadResource(PreludeName);
        var preludeArguments = ScriptArguments.Parse(PreludeName, prelude);
        scripts = withPrelude.Select(name => Load(name, prelude, preludeArguments))
            .Concat(standalone.Select(name => Load(name, null, null)))
            .ToDictionary(script => script.Name);
    }

    /// <summary>The declared arguments of a script, with the prelude's in front where it gets the prelude.</summary>
    public ScriptArguments ArgumentsOf(string name) => scripts[name].Arguments;

    /// <exception cref="DispatchUnavailableException">Redis could not be reached or did not answer in time.</exception>
    public async Task<RedisResult> EvaluateAsync(string name, RedisKey[] keys, RedisValue[] args, CancellationToken cancellationToken) =>
        await Reach(EvaluateCoreAsync(name, keys, args, cancellationToken));

    /// <summary>
    /// A call to Redis whose connection failures become <see cref="DispatchUnavailableException"/>, which callers
    /// (the API's 503) know without knowing the client library.
    /// </summary>
    public static async Task<T> Reach<T>(Task<T> call)
    {
        try
        {
            return await call;
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException)
        {
            throw new DispatchUnavailableException($"Redis cannot be reached: {e.Message}", e);
        }
    }

    private async Task<RedisResult> EvaluateCoreAsync(string name, RedisKey[] keys, RedisValue[] args, CancellationToken cancellationToken)
    {
        var script = scripts[name];
        script.Arguments.Check(args.Length);
        await EnsureLoadedAsync().WaitAsync(cancellationToken);
        var database = redis.GetDatabase();
        try
        {
            return await database.ScriptEvaluateAsync(script.Sha!, keys, args).WaitAsync(cancellationToken);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            Log.ScriptsReloaded(logger, name);
            await LoadAllAsync().WaitAsync(cancellationToken);
            return await database.ScriptEvaluateAsync(script.Sha!, keys, args).WaitAsync(cancellationToken);
        }
    }

    private Task EnsureLoadedAsync()
    {
        lock (gate)
        {
            // A failed load (Redis down) is not cached: the next call tries again.
            if (loading is null || loading.IsFaulted || loading.IsCanceled)
            {
                loading = LoadAllAsync();
            }
            return loading;
        }
    }

    private async Task LoadAllAsync()
    {
        var primaries = redis.GetServers().Where(server => !server.IsReplica).ToList();
        if (primaries.Count == 0)
        {
            throw new InvalidOperationException("No Redis primary is known; the queue scripts cannot be loaded.");
        }
        foreach (var script in scripts.Values)
        {
            foreach (var server in primaries)
            {
                // Every primary computes the same SHA1 for the same text.
                script.Sha = await server.ScriptLoadAsync(script.Text);
            }
        }
    }

    private static Script Load(string name, string? prelude, ScriptArguments? preludeArguments)
    {
        var text = ReadResource(name);
        var arguments = ScriptArguments.Parse(name, text);
        return prelude is null
            ? new Script(name, text, arguments)
            : new Script(name, prelude + "\n" + text, arguments.After(preludeArguments!));
    }

    public static string ReadResource(string name)
    {
        var resource = $"Runbox.Queue.Lua.{name}.lua";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The embedded script {resource} is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private sealed class Script(string name, string text, ScriptArguments arguments)
    {
        public string Name { get; } = name;
        public string Text { get; } = text;
        public ScriptArguments Arguments { get; } = arguments;
        public byte[]? Sha { get; set; }
    }
}
