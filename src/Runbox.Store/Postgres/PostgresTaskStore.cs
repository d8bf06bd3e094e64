using System.Data;
using System.Data.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Runbox.Store.Postgres;

/// <summary>
/// The multi-node store. Writes run at READ COMMITTED: each status change is one UPDATE whose WHERE
/// carries the expected status and fence, and PostgreSQL re-checks that condition on the newest row
/// version after waiting for the row lock, so exactly one of many racing writers matches.
/// </summary>
public sealed class PostgresTaskStore : SqlTaskStore
{
    // Any constant will do as long as every Runbox process uses the same one ("RBXSTORE" in ASCII).
    private const long MigrationLockKey = 0x5242_5853_544F_5245;

    private readonly NpgsqlDataSource _dataSource;

    public PostgresTaskStore(string connectionString, StoreOptions options, TimeProvider timeProvider, ILoggerFactory? loggerFactory = null)
        : base(options, timeProvider, (ILogger?)loggerFactory?.CreateLogger<PostgresTaskStore>() ?? NullLogger.Instance)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        // Host=pg1,pg2 (a primary and its standbys, in any order): every call of the store writes, or reads what
        // it just wrote, so it goes to the primary unless the operator chose otherwise.
        if (builder.ConnectionStringBuilder.Host?.Contains(',', StringComparison.Ordinal) == true && builder.ConnectionStringBuilder.TargetSessionAttributes is null)
        {
            builder.ConnectionStringBuilder.TargetSessionAttributes = "primary";
        }
        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(loggerFactory);
        }
        _dataSource = builder.Build();
    }

    private protected override string Backend => "postgres";

    private protected override IReadOnlyList<Migration> Migrations => PostgresMigrations.All;

    private protected override async Task<T> RunAsync<T>(bool write, Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        // A read sees one snapshot, so a task and its transitions (separate queries) agree.
        var isolation = write ? IsolationLevel.ReadCommitted : IsolationLevel.RepeatableRead;
        await using var transaction = await connection.BeginTransactionAsync(isolation, cancellationToken);
        return await work(connection, transaction);
    }

    private protected override async Task LockMigrationsAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        // Held until the migration commits: a second process waits here, then finds the work done.
        await using var command = Command(connection, transaction, "SELECT pg_advisory_xact_lock(@key)");
        Add(command, "@key", MigrationLockKey, DbType.Int64);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private protected override void AddId(DbCommand command, string name, Guid id) => Add(command, name, id, DbType.Guid);

    private protected override Guid ReadId(DbDataReader reader, int ordinal) => reader.GetGuid(ordinal);

    private protected override void AddTime(DbCommand command, string name, DateTimeOffset? time) =>
        Add(command, name, time is { } value ? ToStored(value) : null, DbType.DateTimeOffset);

    private protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

    private protected override void AddJson(DbCommand command, string name, string json) =>
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Json) { Value = json });

    private protected override ValueTask DisposeResourcesAsync() => _dataSource.DisposeAsync();
}
