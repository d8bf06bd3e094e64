using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Runbox.Core.Seams;
using Runbox.Queue;
using Runbox.Store;
using StackExchange.Redis;

namespace Runbox.Api.Tests;

/// <summary>
/// The HTTP API in process (ASP.NET Core's test server) on a real Redis under a key prefix of its own and a real
/// SQLite store in a folder of its own: what it answers, and what it leaves in the store and the queue.
/// </summary>
public sealed class ApiHarness : IAsyncDisposable
{
    private readonly string _folder;

    private ApiHarness(WebApplication app, HttpClient client, string folder)
    {
        App = app;
        Client = client;
        _folder = folder;
    }

    public WebApplication App { get; }
    public HttpClient Client { get; }
    public ITaskStore Store => App.Services.GetRequiredService<ITaskStore>();
    public ITaskQueue Queue => App.Services.GetRequiredService<ITaskQueue>();

    /// <param name="redis">A redis-server that answers now (the test's, or one a test stops later).</param>
    public static async Task<ApiHarness> StartAsync(string redis)
    {
        var folder = Directory.CreateTempSubdirectory("runbox-api-").FullName;
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Runbox:Users:LimitRefreshInterval"] = "00:10:00" });
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(redis + ",abortConnect=false,connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000");
        // A redis-server a test has just started may not listen yet.
        for (var attempt = 1; !multiplexer.IsConnected; attempt++)
        {
            Assert.True(attempt < 100, $"redis-server at {redis} does not answer");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        builder.Services.AddSingleton<IConnectionMultiplexer>(multiplexer);
        builder.Services.AddRunboxStore($"sqlite:{Path.Combine(folder, "runbox.db")}");
        builder.Services.AddRunboxQueue(o =>
        {
            o.ConnectionString = redis;
            o.KeyPrefix = "api-" + Guid.NewGuid().ToString("N");
        });
        builder.Services.AddSingleton<ILanguageDirectory>(new Languages());
        builder.Services.AddRunboxApi(builder.Configuration);
        var app = builder.Build();
        app.MapRunboxApi();
        await app.Services.GetRequiredService<SqlTaskStore>().MigrateAsync(TestContext.Current.CancellationToken);
        await app.StartAsync(TestContext.Current.CancellationToken);
        return new ApiHarness(app, app.GetTestClient(), folder);
    }

    public async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        var response = await Client.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (response.StatusCode, text.Length > 0 && (response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.Ordinal) ?? false) ? JsonNode.Parse(text) : null, response);
    }

    public async Task<string> SubmitAsync(string json = """{"language":"python","source":"print(1)"}""")
    {
        var (status, body, _) = await SendAsync(HttpMethod.Post, "/v1/tasks", json);
        Assert.True(status == HttpStatusCode.Accepted, $"submit answered {(int)status}: {body}");
        return (string)body!["id"]!;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>The API's seam for what the workers offer: python, as a worker would register it.</summary>
    private sealed class Languages : ILanguageDirectory
    {
        public Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<LanguageInfo>>([new LanguageInfo("python", "Python 3", "3.11.2", "main.py", Compiled: false)]);
    }
}
