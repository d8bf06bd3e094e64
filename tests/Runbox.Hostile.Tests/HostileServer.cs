using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Runbox.Tests.Shared;

namespace Runbox.Hostile.Tests;

/// <summary>
/// `runbox serve` on one OCI runtime, as `./runbox serve` runs it (embedded SQLite and Redis), with three
/// users. At start it submits every case of the suite at once, as tenants would, so the attacks run side
/// by side; each test then waits for its own task. Secrets the server holds (its API keys, an extra
/// variable in its environment) are what the cases look for.
/// </summary>
public abstract class HostileServer(string runtime) : IAsyncLifetime
{
    public const string Mallory = "mallory-key-0123456789abcdef";
    public const string Alice = "alice-key-0123456789abcdef00";
    public const string Bob = "bob-key-0123456789abcdef0000";

    /// <summary>A value only the server's environment holds: no program may ever print it.</summary>
    public static readonly string Secret = "hostile-secret-" + Guid.NewGuid().ToString("N");

    private readonly ConcurrentDictionary<string, Task<JsonNode>> _settled = new(StringComparer.Ordinal);

    public string Runtime { get; } = runtime;

    public RunboxProcess Server { get; private set; } = null!;

    public string DataDirectory => Server.DataDirectory;

    public async ValueTask InitializeAsync()
    {
        var env = new Dictionary<string, string>
        {
            ["Runbox__Sandbox__Runtime"] = Runtime,
            ["RUNBOX_HOSTILE_SECRET"] = Secret,
            ["Runbox__Auth__Keys__0__Key"] = Mallory,
            ["Runbox__Auth__Keys__0__User"] = "mallory",
            ["Runbox__Auth__Keys__0__Concurrency"] = "4",
            ["Runbox__Auth__Keys__1__Key"] = Alice,
            ["Runbox__Auth__Keys__1__User"] = "alice",
            ["Runbox__Auth__Keys__1__Concurrency"] = "1",
            ["Runbox__Auth__Keys__2__Key"] = Bob,
            ["Runbox__Auth__Keys__2__User"] = "bob",
            ["Runbox__Auth__Keys__2__Concurrency"] = "1",
        };
        Server = await RunboxProcess.StartAsync("serve", TestEnvironment.NewDataDirectory(), env, extraArgs: ["--slots", "4"]);
        // Urgent ones first: the pairs that must overlap get the first slots.
        foreach (var hostile in HostileCases.All.OrderByDescending(c => c.Urgent))
        {
            using var client = Client(hostile.User);
            var submitted = await client.SubmitAsync(hostile.Submission(this));
            var id = (string)submitted["id"]!;
            _settled[hostile.Name] = SettleAsync(hostile.User, id);
        }
    }

    public ApiClient Client(string key) => new(Server.BaseAddress, key);

    /// <summary>The settled view of a case's task.</summary>
    public Task<JsonNode> SettledAsync(string name) => _settled[name];

    /// <summary>Completes when every case's task has settled (whatever its outcome).</summary>
    public Task AllSettledAsync() => Task.WhenAll(_settled.Values.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

    public async ValueTask DisposeAsync()
    {
        // Null when the server never started: InitializeAsync's error is the one that counts.
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }

    private async Task<JsonNode> SettleAsync(string key, string id)
    {
        using var client = Client(key);
        // Generous: all cases share four slots on a small machine, and some run to their limits on purpose.
        // Polled once a second: fifty tasks polled faster would load the server they attack.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        while (true)
        {
            var view = await client.GetAsync(id);
            if (view["result"] is not null && (string?)view["status"] is not ("pending" or "running"))
            {
                return view;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"task {id} did not settle: {view}");
            }
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }
}

public sealed class CrunHostileServer() : HostileServer("crun");

public sealed class RuncHostileServer() : HostileServer("runc");
