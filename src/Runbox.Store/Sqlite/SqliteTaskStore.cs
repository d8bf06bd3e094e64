using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Runbox.Store.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode, so readers never block the single writer.
/// Ids are text, times are microseconds since the Unix epoch.
/// </summary>
public sealed class SqliteTaskStore : SqlTaskStore
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int BusyRetries = 3;

    private readonly string _connectionString;
    private readonly int _busyTimeoutMs;

    // SQLite has one writer at a time, and Microsoft.Data.Sqlite waits for the lock synchronously
    // (busy_timeout), holding a thread-pool thread. Under hundreds of concurrent requests those
    // blocked threads starved the pool (Redis replies went unread until they timed out), so this
    // process's writers queue here asynchronously; busy_timeout is left for other processes.
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    // The one connection this process writes through (guarded by _writeGate): opened and given its
    // settings once, where a pooled connection per write ran three PRAGMA statements every time.
    private SqliteConnection? _writer;

    public SqliteTaskStore(string path, StoreOptions options, TimeProvider timeProvider, ILoggerFactory? loggerFactory = null)
        : base(options, timeProvider, (ILogger?)loggerFactory?.CreateLogger<SqliteTaskStore>() ?? NullLogger.Instance)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(options);
        FilePath = System.IO.Path.GetFullPath(path);
        _busyTimeoutMs = (int)options.BusyTimeout.TotalMilliseconds;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = FilePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            // Microsoft.Data.Sqlite retries a busy statement for this long on top of busy_timeout.
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
        }.ToString();
    }

    /// <summary>The database file.</summary>
    public string FilePath { get; }

    private protected override string Backend => "sqlite";

    private protected override IReadOnlyList<Migration> Migrations => SqliteMigrations.All;

    private protected override async Task PrepareAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(FilePath)!);
        await using var connection = await OpenAsync(forWrites: true, cancellationToken);
        await using var command = connection.CreateCommand();
        // WAL is a property of the file: set once, every later connection uses it.
        command.CommandText = "PRAGMA journal_mode = WAL";
        var mode = Convert.ToString(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) ?? "";
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            Log.SqliteNotWal(Logger, mode);
        }
    }

    // BEGIN IMMEDIATE (deferred: false) takes the write lock before the first read, so racing writers
    // queue on busy_timeout. A deferred writer would read first and then fail to upgrade its lock with
    // an immediate SQLITE_BUSY that no timeout can wait out.
    private protected override async Task<T> RunAsync<T>(bool write, Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        if (!write)
        {
            return await RetryWhenBusyAsync(async () =>
            {
                await using var connection = await OpenAsync(forWrites: false, cancellationToken);
                await using var transaction = connection.BeginTransaction(deferred: true);
                return await work(connection, transaction);
            });
        }
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            return await RetryWhenBusyAsync(async () =>
            {
                _writer ??= await OpenAsync(forWrites: true, cancellationToken);
                await using var transaction = _writer.BeginTransaction(deferred: false);
                return await work(_writer, transaction);
            });
        }
        catch
        {
            // Whatever went wrong, the next write starts on a fresh connection.
            await CloseWriterAsync();
            throw;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>
    /// Runs a unit of work again when SQLite reports the file busy or locked: nothing was committed (its
    /// transaction was rolled back on dispose), so the whole unit can run again.
    /// </summary>
    private async Task<T> RetryWhenBusyAsync<T>(Func<Task<T>> unitOfWork)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await unitOfWork();
            }
            catch (SqliteException exception) when (exception.SqliteErrorCode is SqliteBusy or SqliteLocked && attempt < BusyRetries)
            {
                Log.SqliteBusyRetry(Logger, attempt, exception);
            }
        }
    }

    private async Task CloseWriterAsync()
    {
        if (_writer is { } writer)
        {
            _writer = null;
            await writer.DisposeAsync();
        }
    }

    private protected override Task LockMigrationsAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        // The migration runs under BEGIN IMMEDIATE: that is already the file-wide write lock.
        Task.CompletedTask;

    private protected override void AddId(DbCommand command, string name, Guid id) =>
        Add(command, name, id.ToString("D"), DbType.String);

    private protected override Guid ReadId(DbDataReader reader, int ordinal) => Guid.Parse(reader.GetString(ordinal));

    private protected override void AddTime(DbCommand command, string name, DateTimeOffset? time) =>
        Add(command, name, time is { } value ? (ToStored(value).UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10 : null, DbType.Int64);

    private protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) =>
        new(DateTimeOffset.UnixEpoch.UtcTicks + (reader.GetInt64(ordinal) * 10), TimeSpan.Zero);

    private protected override void AddJson(DbCommand command, string name, string json) => Add(command, name, json, DbType.String);

    private protected override async ValueTask DisposeResourcesAsync()
    {
        await _writeGate.WaitAsync();
        try
        {
            await CloseWriterAsync();
        }
        finally
        {
            _writeGate.Release();
        }
        // Pooled connections keep the file (and its -wal and -shm companions) open after the store is gone.
        await using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    /// <summary>
    /// A pooled connection; one <paramref name="forWrites"/> gets this store's per-connection settings. Reads
    /// need none of them: foreign keys and synchronous act on writes, and Microsoft.Data.Sqlite waits out a
    /// busy reader itself (DefaultTimeout), which in WAL mode only a checkpoint's rare moments cause.
    /// </summary>
    private async Task<SqliteConnection> OpenAsync(bool forWrites, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            if (forWrites)
            {
                await using var command = connection.CreateCommand();
                // synchronous = FULL because this is the system of record: with NORMAL a power loss may drop
                // the last commits.
                command.CommandText = string.Create(CultureInfo.InvariantCulture,
                    $"PRAGMA busy_timeout = {_busyTimeoutMs}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;");
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}
