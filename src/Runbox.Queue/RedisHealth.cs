using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Runbox.Queue;

/// <summary>Startup checks of the Redis a queue runs on.</summary>
public static class RedisHealth
{
    public const string RequiredPolicy = "noeviction";

    /// <summary>
    /// Reads <c>maxmemory-policy</c> and logs a warning when it is not <c>noeviction</c>: an evicting
    /// policy would silently drop queued tasks under memory pressure. INFO is read from a script,
    /// which needs no admin mode on the connection (CONFIG GET would). Returns the policy.
    /// </summary>
    public static async Task<string> CheckEvictionPolicyAsync(IConnectionMultiplexer redis, ILogger logger, CancellationToken cancellationToken)
    {
        var info = (string)(await redis.GetDatabase().ScriptEvaluateAsync(InfoScript).WaitAsync(cancellationToken))!;
        var policy = info.Split('\n')
            .Select(line => line.TrimEnd('\r'))
            .FirstOrDefault(line => line.StartsWith(PolicyField, StringComparison.Ordinal))?[PolicyField.Length..]
            ?? throw new InvalidOperationException("Redis INFO memory did not report maxmemory_policy.");
        if (policy != RequiredPolicy)
        {
            Log.EvictingPolicy(logger, policy);
        }
        return policy;
    }

    private const string InfoScript = "return redis.call('INFO', 'memory')";
    private const string PolicyField = "maxmemory_policy:";
}
