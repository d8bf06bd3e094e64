using Runbox.Tests.Shared;

namespace Runbox.EndToEnd.Tests;

/// <summary>One `runbox serve` with three API keys, shared by the service tests.</summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string AliceKey = "alice-key-0123456789abcdef";
    public const string BobKey = "bob-key-0123456789abcdef00";
    public const string AdminKey = "admin-key-0123456789abcdef";

    public RunboxProcess Server { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var env = TestEnvironment.SharedRedis("e2e-" + Guid.NewGuid().ToString("N")[..8], new Dictionary<string, string>
        {
            ["Runbox__Auth__Keys__0__Key"] = AliceKey,
            ["Runbox__Auth__Keys__0__User"] = "alice",
            ["Runbox__Auth__Keys__0__Concurrency"] = "1",
            ["Runbox__Auth__Keys__1__Key"] = BobKey,
            ["Runbox__Auth__Keys__1__User"] = "bob",
            ["Runbox__Auth__Keys__1__Concurrency"] = "3",
            ["Runbox__Auth__Keys__2__Key"] = AdminKey,
            ["Runbox__Auth__Keys__2__User"] = "root",
            ["Runbox__Auth__Keys__2__Admin"] = "true",
        });
        Server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "4"]);
    }

    public ApiClient Client(string? key) => new(Server.BaseAddress, key);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition("serve")]
public sealed class ServeCollection : ICollectionFixture<ServeFixture>;
