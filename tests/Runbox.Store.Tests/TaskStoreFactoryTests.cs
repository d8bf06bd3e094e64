using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Runbox.Core.Seams;
using Runbox.Store.Postgres;
using Runbox.Store.Sqlite;

namespace Runbox.Store.Tests;

public sealed class TaskStoreFactoryTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "runbox-factory-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task Create_SqliteSetting_ReturnsSqliteStoreOnThatFile()
    {
        var path = Path.Combine(_directory, "a.db");

        await using var store = TaskStoreFactory.Create($"sqlite:{path}", new StoreOptions(), TimeProvider.System);

        var sqlite = Assert.IsType<SqliteTaskStore>(store);
        Assert.Equal(path, sqlite.FilePath);
    }

    [Fact]
    public async Task Create_ConnectionString_ReturnsPostgresStore()
    {
        await using var store = TaskStoreFactory.Create("Host=localhost;Username=runbox;Database=runbox", new StoreOptions(), TimeProvider.System);

        Assert.IsType<PostgresTaskStore>(store);
    }

    [Theory]
    [InlineData("sqlite:")]
    [InlineData("sqlite:   ")]
    public void Create_SqliteWithoutPath_ThrowsArgumentException(string setting)
    {
        var error = Assert.Throws<ArgumentException>(() => TaskStoreFactory.Create(setting, new StoreOptions(), TimeProvider.System));

        Assert.Contains("names no file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_InvalidOptions_ThrowsArgumentException()
    {
        var options = new StoreOptions { MaxOutputBytes = 10 };

        var error = Assert.Throws<ArgumentException>(() => TaskStoreFactory.Create($"sqlite:{_directory}/b.db", options, TimeProvider.System));

        Assert.Contains(nameof(StoreOptions.MaxOutputBytes), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateAsync_SqliteSetting_ReturnsMigratedStore()
    {
        var path = Path.Combine(_directory, "c.db");

        await using var store = await TaskStoreFactory.CreateAsync($"sqlite:{path}", TimeProvider.System, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(path));
        Assert.Empty((await store.ListAsync(new TaskQuery(), TestContext.Current.CancellationToken)).Items);
    }

    [Fact]
    public async Task AddRunboxStore_SqliteSetting_ResolvesOneSqliteStoreWithRegisteredClock()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(time)
            .AddRunboxStore($"sqlite:{Path.Combine(_directory, "d.db")}", options => options.MaxArtifactCount = 1);
        await using var provider = services.BuildServiceProvider();

        var store = provider.GetRequiredService<ITaskStore>();
        var created = await store.CreateAsync(new NewTask(new Core.Tasks.TaskSpec { User = "u", Language = "bash", Source = "true" }), TestContext.Current.CancellationToken);

        Assert.IsType<SqliteTaskStore>(store);
        Assert.Same(store, provider.GetRequiredService<SqlTaskStore>());
        Assert.Equal(time.GetUtcNow(), created.Task.CreatedAt);
    }
}
