using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Store.Postgres;

namespace Runbox.Store.Tests;

/// <summary>
/// A multi-host connection string (<c>Host=pg1,pg2</c>) with a real standby of the test server: the store's
/// writes must reach the primary whichever host comes first.
/// </summary>
public sealed class PostgresMultiHostTests(PostgresStandbyFixture standby) : IClassFixture<PostgresStandbyFixture>
{
    [Fact]
    public async Task Writes_StandbyListedFirst_GoToThePrimary()
    {
        var schema = $"rb_multihost_{Guid.NewGuid():N}";
        await PostgresStandbyFixture.ExecuteAsync(standby.Primary, $"CREATE SCHEMA {schema}");
        var primary = new NpgsqlConnectionStringBuilder(standby.Primary);
        var both = new NpgsqlConnectionStringBuilder(standby.Primary)
        {
            Host = $"127.0.0.1:{standby.StandbyPort},{primary.Host}:{primary.Port}",
            SearchPath = schema,
        };
        try
        {
            await using var store = new PostgresTaskStore(both.ConnectionString, new StoreOptions(), TimeProvider.System);

            await store.MigrateAsync(TestContext.Current.CancellationToken);
            var created = await store.CreateAsync(new NewTask(new TaskSpec { User = "alice", Language = "python", Source = "print(1)" }), TestContext.Current.CancellationToken);

            Assert.True(created.Created);
            Assert.Equal(TaskStatus.Pending, (await store.GetAsync(created.Task.Id, TestContext.Current.CancellationToken))!.Status);
        }
        finally
        {
            await PostgresStandbyFixture.ExecuteAsync(standby.Primary, $"DROP SCHEMA IF EXISTS {schema} CASCADE");
        }
    }
}

/// <summary>A hot standby of the test's PostgreSQL (pg_basebackup, streaming), on a port of its own, for one test class.</summary>
public sealed class PostgresStandbyFixture : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "runbox-standby-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly string _bin = Directory.GetDirectories("/usr/lib/postgresql").Order(StringComparer.Ordinal).Last() + "/bin";

    public string Primary { get; } = Environment.GetEnvironmentVariable("RUNBOX_TEST_POSTGRES") is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException("RUNBOX_TEST_POSTGRES is not set: run the tests through scripts/test, which starts PostgreSQL.");

    public int StandbyPort { get; } = FreePort();

    public async ValueTask InitializeAsync()
    {
        var primary = new NpgsqlConnectionStringBuilder(Primary);
        Directory.CreateDirectory(_folder);
        Run("chown", "postgres", _folder);
        Run("chmod", "700", _folder);
        Run("runuser", "-u", "postgres", "--", $"{_bin}/pg_basebackup", "-h", primary.Host!, "-p", primary.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-U", primary.Username!, "-D", _folder, "-R", "-X", "stream", "--checkpoint=fast");
        // A hot standby needs at least the primary's connection slots.
        var slots = await ScalarAsync(Primary, "SHOW max_connections");
        try
        {
            Run("runuser", "-u", "postgres", "--", $"{_bin}/pg_ctl", "-D", _folder, "-w", "-t", "60", "-l", $"{_folder}/server.log",
                "-o", $"-p {StandbyPort} -k /tmp -c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections={slots}", "start");
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException(e.Message + "\n" + await File.ReadAllTextAsync($"{_folder}/server.log", TestContext.Current.CancellationToken), e);
        }
        var standby = new NpgsqlConnectionStringBuilder(Primary) { Host = "127.0.0.1", Port = StandbyPort }.ConnectionString;
        await using var connection = new NpgsqlConnection(standby);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand("SELECT pg_is_in_recovery()", connection);
        Assert.True((bool)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!, "the standby is not in recovery");
    }

    public ValueTask DisposeAsync()
    {
        if (File.Exists(Path.Combine(_folder, "postmaster.pid")))
        {
            Run("runuser", "-u", "postgres", "--", $"{_bin}/pg_ctl", "-D", _folder, "-m", "immediate", "stop");
        }
        Directory.Delete(_folder, recursive: true);
        return ValueTask.CompletedTask;
    }

    private static async Task<string> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return (string)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    private static void Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed: {error}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
