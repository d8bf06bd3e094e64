using Microsoft.Data.Sqlite;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;
using Runbox.Store.Sqlite;

namespace Runbox.Store.Tests;

public sealed class SqliteTaskStoreTests : TaskStoreContractTests
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "runbox-store-tests", Guid.NewGuid().ToString("N"));

    private string FilePath => Path.Combine(_directory, "nested", "runbox.db");

    protected override Task CreateDatabaseAsync() => Task.CompletedTask;

    protected override SqlTaskStore OpenStore() => new SqliteTaskStore(FilePath, Options, Time);

    protected override async Task<long> CountRowsAsync(string table)
    {
        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    protected override async Task<object?> ExecuteRawAsync(string sql)
    {
        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(TestContext.Current.CancellationToken);
    }

    protected override Task DropDatabaseAsync()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
        return Task.CompletedTask;
    }

    [Fact]
    public async Task MigrateAsync_NewFile_CreatesItInWalMode()
    {
        await Store.MigrateAsync(TestContext.Current.CancellationToken);

        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", await command.ExecuteScalarAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task CreateAsync_StoreReopened_TaskIsStillThere()
    {
        var created = await Store.CreateAsync(new NewTask(Spec), TestContext.Current.CancellationToken);
        await Store.DisposeAsync();

        await using var reopened = OpenStore();

        Assert.NotNull(await reopened.GetAsync(created.Task.Id, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task CreateAsync_AnotherWriterHoldsTheLock_WaitsForItInsteadOfFailing()
    {
        await Store.MigrateAsync(TestContext.Current.CancellationToken);
        await using var other = await OpenRawAsync();
        await using var lockHolder = other.BeginTransaction(deferred: false);

        var create = Task.Run(() => Store.CreateAsync(new NewTask(Spec), TestContext.Current.CancellationToken), TestContext.Current.CancellationToken);
        await Task.Delay(TimeSpan.FromMilliseconds(300), TestContext.Current.CancellationToken);
        Assert.False(create.IsCompleted);
        await lockHolder.CommitAsync(TestContext.Current.CancellationToken);

        Assert.True((await create).Created);
    }

    [Fact]
    public async Task CreateAsync_AfterAWriteFailedOnTheLock_WritesAgain()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = new SqliteTaskStore(FilePath, new StoreOptions { BusyTimeout = TimeSpan.FromMilliseconds(100) }, Time);
        await store.CreateAsync(new NewTask(Spec), ct);
        await using (var other = await OpenRawAsync())
        {
            await using var lockHolder = other.BeginTransaction(deferred: false);
            await Assert.ThrowsAsync<SqliteException>(() => store.CreateAsync(new NewTask(Spec), ct));
        }

        // The store writes through one long-lived connection: a failed write must leave no transaction on it.
        var after = await store.CreateAsync(new NewTask(Spec), ct);

        Assert.True(after.Created);
        Assert.NotNull(await store.GetAsync(after.Task.Id, ct));
    }

    private static TaskSpec Spec => new() { User = "u", Language = "bash", Source = "true" };

    private async Task<SqliteConnection> OpenRawAsync()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = FilePath, Pooling = false }.ToString());
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        return connection;
    }
}
