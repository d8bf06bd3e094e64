using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Logging;
using Runbox.Store.Postgres;
using Runbox.Store.Sqlite;

namespace Runbox.Store;

/// <summary>Builds a store from the <c>Runbox:Store</c> setting, for callers without dependency injection (the CLI).</summary>
public static class TaskStoreFactory
{
    /// <summary>The setting's prefix for the embedded store: <c>sqlite:PATH</c>.</summary>
    public const string SqlitePrefix = "sqlite:";

    /// <summary>
    /// A store for <paramref name="setting"/>: <c>sqlite:PATH</c> for the embedded SQLite file,
    /// anything else is a PostgreSQL connection string. The schema is migrated on first use.
    /// </summary>
    /// <exception cref="ArgumentException">The setting or the options are not valid.</exception>
    public static SqlTaskStore Create(string setting, StoreOptions options, TimeProvider timeProvider, ILoggerFactory? loggerFactory = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(setting);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var errors = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), errors, validateAllProperties: true))
        {
            throw new ArgumentException($"Invalid store options: {string.Join(" ", errors.Select(e => e.ErrorMessage))}", nameof(options));
        }

        if (!setting.StartsWith(SqlitePrefix, StringComparison.OrdinalIgnoreCase))
        {
            return new PostgresTaskStore(setting, options, timeProvider, loggerFactory);
        }
        var path = setting[SqlitePrefix.Length..];
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException($"The store setting '{setting}' names no file; use e.g. sqlite:./data/runbox.db.", nameof(setting));
        }
        return new SqliteTaskStore(path, options, timeProvider, loggerFactory);
    }

    /// <summary>Like <see cref="Create"/>, and migrates the schema before returning so setup errors surface here.</summary>
    public static async Task<SqlTaskStore> CreateAsync(
        string setting, TimeProvider timeProvider, StoreOptions? options = null, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        var store = Create(setting, options ?? new StoreOptions(), timeProvider, loggerFactory);
        try
        {
            await store.MigrateAsync(cancellationToken);
            return store;
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }
}
