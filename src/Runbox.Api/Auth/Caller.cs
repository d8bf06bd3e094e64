using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Runbox.Api.Auth;

/// <summary>Who is calling: the user a key maps to (or <c>anonymous</c> in local mode).</summary>
public sealed record Caller(string User, bool Admin)
{
    public const string Anonymous = "anonymous";

    public bool CanSee(string owner) => Admin || string.Equals(owner, User, StringComparison.Ordinal);
}

/// <summary>
/// Resolves the bearer key on every /v1 request. A missing or unknown key is a 401 problem;
/// health, metrics and the OpenAPI document stay open for probes and scrapers.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, IOptionsMonitor<AuthOptions> options)
{
    private const string CallerKey = "runbox.caller";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            await next(context);
            return;
        }

        var auth = options.CurrentValue;
        if (auth.LocalMode)
        {
            context.Items[CallerKey] = new Caller(Caller.Anonymous, Admin: true);
            await next(context);
            return;
        }

        var header = context.Request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        var presented = header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : null;
        var key = presented is null ? null : auth.Keys.FirstOrDefault(k => FixedTimeEquals(k.Key, presented));
        if (key is null)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Problems.Write(context, StatusCodes.Status401Unauthorized, "Unauthorized",
                presented is null ? "Send 'Authorization: Bearer <api key>'." : "The API key is not known.");
            return;
        }
        context.Items[CallerKey] = new Caller(key.User, key.Admin);
        await next(context);
    }

    public static Caller Of(HttpContext context) =>
        context.Items[CallerKey] as Caller ?? throw new InvalidOperationException("The API key middleware did not run.");

    // Compare keys in constant time so response timing leaks nothing about a key's prefix.
    private static bool FixedTimeEquals(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(expected)), SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
