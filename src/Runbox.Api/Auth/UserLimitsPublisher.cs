using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Runbox.Core.Seams;

namespace Runbox.Api.Auth;

/// <summary>
/// Tells the queue each configured user's concurrency limit at startup (the claim script enforces
/// it). In local mode the anonymous user has no limit of its own: the workers' slots are the limit.
/// </summary>
internal sealed class UserLimitsPublisher(ITaskQueue queue, IOptions<AuthOptions> auth, IOptions<UsersOptions> users) : IHostedService
{
    private const int Unlimited = 1_000_000;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (auth.Value.LocalMode)
        {
            await queue.SetUserLimitAsync(Caller.Anonymous, Unlimited, cancellationToken);
            return;
        }
        foreach (var key in auth.Value.Keys)
        {
            await queue.SetUserLimitAsync(key.User, key.Concurrency ?? users.Value.DefaultConcurrency, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
