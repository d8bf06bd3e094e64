using Npgsql;
using Runbox.Store.Postgres;

namespace Runbox.Store.Tests;

/// <summary>Each test gets its own schema, so tests run in parallel against one server.</summary>
public sealed class PostgresTaskStoreTests : TaskStoreContractTests
{
    private const string Variable = "RUNBOX_TEST_POSTGRES";

    private readonly string _schema = $"rb_test_{Guid.NewGuid():N}";

    private static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{Variable} is not set. The PostgreSQL store tests need a server: set {Variable} to a connection string "
                + "(e.g. Host=127.0.0.1;Port=5432;Username=postgres;Database=postgres), or run scripts/test, which starts one.");

    private string SchemaConnectionString => new NpgsqlConnectionStringBuilder(ServerConnectionString) { SearchPath = _schema }.ToString();

    protected override async Task CreateDatabaseAsync() => await ExecuteAsync($"CREATE SCHEMA {_schema}");

    protected override SqlTaskStore OpenStore() => new PostgresTaskStore(SchemaConnectionString, Options, Time);

    protected override async Task<long> CountRowsAsync(string table)
    {
        await using var connection = new NpgsqlConnection(SchemaConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand($"SELECT COUNT(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    protected override async Task<object?> ExecuteRawAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(SchemaConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(TestContext.Current.CancellationToken);
    }

    protected override Task DropDatabaseAsync() => ExecuteAsync($"DROP SCHEMA IF EXISTS {_schema} CASCADE");

    private static async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ServerConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }
}
