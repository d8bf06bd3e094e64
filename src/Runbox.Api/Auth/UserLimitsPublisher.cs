using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Api.Auth;

/// <summary>
/// Tells the queue each configured user's concurrency limit (the claim script enforces it): once before
/// the API serves, then again every <see cref="UsersOptions.LimitRefreshInterval"/>. The limits live in
/// Redis only, and Redis may lose them (flushed, restarted without its data) while the store keeps every
/// task: the reconciler puts the tasks back, and this puts the limits back (and has the running counts
/// recounted), so a user never runs above their limit, nor a local server below its slots, for longer
/// than one interval. In local mode the anonymous user has no limit of its own: the workers' slots are
/// the limit.
/// </summary>
internal sealed class UserLimitsPublisher(
    ITaskQueue queue,
    IOptions<AuthOptions> auth,
    IOptions<UsersOptions> users,
    TimeProvider time,
    ILogger<UserLimitsPublisher> logger) : BackgroundService
{
    private const int Unlimited = 1_000_000;

    private readonly IReadOnlyDictionary<string, int> _limits = auth.Value.LocalMode
        ? new Dictionary<string, int> { [Caller.Anonymous] = Unlimited }
        // AuthOptions validation makes every key of one user carry the same Concurrency.
        : auth.Value.Keys
            .GroupBy(key => key.User, StringComparer.Ordinal)
            .ToDictionary(keys => keys.Key, keys => keys.First().Concurrency ?? users.Value.DefaultConcurrency, StringComparer.Ordinal);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await PublishAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(users.Value.LimitRefreshInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var changed = await PublishAsync(stoppingToken);
                if (changed > 0)
                {
                    // The running counts sit beside the limits in Redis and went with them: recount now
                    // rather than at the reconciler's next pass, so a user held to a small limit is not
                    // let through above it meanwhile.
                    var recounted = await queue.RecountRunningAsync(stoppingToken);
                    Log.UserLimitsRestored(logger, changed, _limits.Count, recounted);
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                Log.UserLimitsPublishFailed(logger, exception);
            }
        }
    }

    /// <summary>Returns how many users' limits the queue did not have as configured.</summary>
    private async Task<int> PublishAsync(CancellationToken cancellationToken)
    {
        var changes = await Task.WhenAll(_limits.Select(limit => queue.SetUserLimitAsync(limit.Key, limit.Value, cancellationToken)));
        return changes.Count(changed => changed);
    }
}
