using System.Net;
using System.Text.Json.Nodes;

namespace Runbox.EndToEnd.Tests;

[Collection("serve")]
public sealed class ServiceTests(ServeFixture fixture)
{
    public static TheoryData<string, string> HelloPrograms() => new()
    {
        { "python", "import sys\nprint('hello ' + sys.stdin.read().strip())" },
        { "c", "#include <stdio.h>\nint main(void){char b[64];if(!fgets(b,64,stdin))return 1;printf(\"hello %s\",b);return 0;}" },
        { "cpp", "#include <iostream>\n#include <string>\nint main(){std::string s;std::getline(std::cin,s);std::cout<<\"hello \"<<s<<std::endl;}" },
        { "javascript", "const s=require('fs').readFileSync(0,'utf8').trim();console.log('hello '+s);" },
        { "bash", "read s; echo \"hello $s\"" },
        { "java", "import java.util.Scanner;\npublic class Main{public static void main(String[] a){System.out.println(\"hello \"+new Scanner(System.in).nextLine());}}" },
    };

    [Theory]
    [MemberData(nameof(HelloPrograms))]
    public async Task Submit_EveryLanguage_CompletesWithStdout(string language, string source)
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);

        var task = await alice.SubmitAsync(new { language, source, stdin = "runbox\n", limits = new { wall_time_ms = 20000 } }, wait: true);

        Assert.True((string?)task["status"] == "completed", task.ToJsonString());
        Assert.Equal("ok", (string?)task["result"]!["verdict"]);
        Assert.Equal("hello runbox\n", (string?)task["result"]!["stdout"]);
        Assert.Equal(0, (int?)task["result"]!["exit_code"]);
        Assert.Equal(["pending", "running", "completed"], task["transitions"]!.AsArray().Select(t => (string?)t!["to"]));
    }

    [Fact]
    public async Task Submit_NonZeroExit_FailsWithRuntimeErrorAndNoRetry()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);

        var task = await alice.SubmitAsync(new { language = "python", source = "import sys\nsys.stderr.write('bad\\n')\nsys.exit(3)" }, wait: true);

        Assert.Equal("failed", (string?)task["status"]);
        Assert.Equal("runtime_error", (string?)task["result"]!["verdict"]);
        Assert.Equal(3, (int?)task["result"]!["exit_code"]);
        Assert.Equal("bad\n", (string?)task["result"]!["stderr"]);
        Assert.Equal(1, (int?)task["attempt"]);
        Assert.False((bool?)task["dead_lettered"]);
    }

    [Fact]
    public async Task Submit_CompileError_FailsWithCompileOutput()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);

        var task = await alice.SubmitAsync(new { language = "c", source = "int main(void) { return nope; }" }, wait: true);

        Assert.Equal("failed", (string?)task["status"]);
        Assert.Equal("compile_error", (string?)task["result"]!["verdict"]);
        Assert.Contains("nope", (string?)task["result"]!["compile"]!["output"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_SameIdempotencyKey_ReturnsFirstTask()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        var key = Guid.NewGuid().ToString();

        var first = await bob.SubmitAsync(new { language = "bash", source = "echo once" }, idempotencyKey: key);
        var second = await bob.SubmitAsync(new { language = "bash", source = "echo twice" }, idempotencyKey: key);

        Assert.Equal((string?)first["id"], (string?)second["id"]);
        var done = await bob.WaitForStatusAsync((string)first["id"]!, "completed");
        Assert.Equal("once\n", (string?)done["result"]!["stdout"]);
    }

    [Fact]
    public async Task Get_AnotherUsersTask_IsNotFound()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);
        using var bob = fixture.Client(ServeFixture.BobKey);
        using var admin = fixture.Client(ServeFixture.AdminKey);
        var task = await alice.SubmitAsync(new { language = "bash", source = "echo mine" });
        var id = (string)task["id"]!;

        var (status, body, _) = await bob.SendAsync(HttpMethod.Get, $"/v1/tasks/{id}");
        var (cancelStatus, _, _) = await bob.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");
        var (listStatus, list, _) = await bob.SendAsync(HttpMethod.Get, "/v1/tasks?limit=200");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("application/problem+json", (await bob.SendAsync(HttpMethod.Get, $"/v1/tasks/{id}")).Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, cancelStatus);
        Assert.Equal(HttpStatusCode.OK, listStatus);
        Assert.DoesNotContain(list!["items"]!.AsArray(), t => (string?)t!["id"] == id);
        Assert.Equal(HttpStatusCode.OK, (await admin.SendAsync(HttpMethod.Get, $"/v1/tasks/{id}")).Status);
        Assert.NotNull(body);
    }

    [Fact]
    public async Task Request_WithoutOrWithUnknownKey_IsUnauthorized()
    {
        using var anonymous = fixture.Client(null);
        using var stranger = fixture.Client("not-a-key-0123456789abcdef");

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(HttpMethod.Get, "/v1/tasks")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.SendAsync(HttpMethod.Get, "/v1/tasks")).Status);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.SendAsync(HttpMethod.Get, "/health/live")).Status);
    }

    [Fact]
    public async Task Cancel_PendingTask_IsCancelledAndNeverRuns()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);
        // Alice may run one task at a time: the second waits behind the first.
        var blocker = await alice.SubmitAsync(new { language = "bash", source = "sleep 2" });
        var waiting = await alice.SubmitAsync(new { language = "bash", source = "echo ran" });
        var id = (string)waiting["id"]!;

        var (status, body, _) = await alice.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("cancelled", (string?)body!["status"]);
        await alice.WaitForStatusAsync((string)blocker["id"]!, "completed");
        var after = await alice.GetAsync(id);
        Assert.Equal("cancelled", (string?)after["status"]);
        Assert.Null(after["started_at"]?.GetValue<string?>());
        Assert.Equal(HttpStatusCode.Conflict, (await alice.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel")).Status);
    }

    [Fact]
    public async Task Cancel_RunningTask_StopsTheRun()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        var task = await bob.SubmitAsync(new { language = "python", source = "import time\nprint('started', flush=True)\ntime.sleep(30)", limits = new { wall_time_ms = 40000 } });
        var id = (string)task["id"]!;
        await bob.WaitForStatusAsync(id, "running");

        var (status, _, _) = await bob.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/cancel");
        var cancelled = await bob.WaitForStatusAsync(id, "cancelled", TimeSpan.FromSeconds(60));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("cancelled", (string?)cancelled["result"]!["verdict"]);
        // The run was stopped, not left to sleep out its 30 s.
        Assert.True((long)cancelled["result"]!["wall_time_ms"]! < 30_000, cancelled.ToJsonString());
    }

    [Fact]
    public async Task Events_StreamEveryTransitionAndOutputInOrder()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        var task = await bob.SubmitAsync(new
        {
            language = "python",
            source = "import time\nfor i in range(5):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)",
        });
        var id = (string)task["id"]!;

        var events = await bob.ReadEventsAsync(id, TimeSpan.FromSeconds(60));

        var statuses = events.Where(e => e.Event == "status").Select(e => (string?)e.Data["status"]).ToList();
        Assert.Equal("completed", statuses[^1]);
        Assert.Contains("running", statuses);
        Assert.True(statuses.IndexOf("running") < statuses.IndexOf("completed"));
        var output = string.Concat(events.Where(e => e.Event == "output").Select(e => (string?)e.Data["data"]));
        Assert.Equal(string.Concat(Enumerable.Range(0, 5).Select(i => $"line {i}\n")), output);
        var runningAt = events.FindIndex(e => e.Event == "status" && (string?)e.Data["status"] == "running");
        var completedAt = events.FindIndex(e => e.Event == "status" && (string?)e.Data["status"] == "completed");
        Assert.All(events.Select((e, i) => (e, i)).Where(x => x.e.Event == "output"), x => Assert.InRange(x.i, runningAt, completedAt));
    }

    /// <summary>Regression: a watcher that connects after the run ended used to get the status and no output.</summary>
    [Fact]
    public async Task Events_AfterTheTaskSettled_ReplayTheFinalAttemptsOutput()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        var task = await bob.SubmitAsync(new { language = "bash", source = "echo one; echo two >&2" }, wait: true);
        Assert.Equal("completed", (string?)task["status"]);

        var events = await bob.ReadEventsAsync((string)task["id"]!, TimeSpan.FromSeconds(30));

        Assert.Equal("completed", (string?)events[0].Data["status"]);
        var output = events.Where(e => e.Event == "output").ToList();
        Assert.Equal("one\n", string.Concat(output.Where(e => (string?)e.Data["stream"] == "stdout").Select(e => (string?)e.Data["data"])));
        Assert.Equal("two\n", string.Concat(output.Where(e => (string?)e.Data["stream"] == "stderr").Select(e => (string?)e.Data["data"])));
    }

    [Fact]
    public async Task Timeout_RetriesWithBackoffThenDeadLettersThenRequeues()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        var task = await bob.SubmitAsync(new
        {
            language = "python",
            source = "while True: pass",
            limits = new { wall_time_ms = 300 },
            retry = new { max_attempts = 2, on = new[] { "timeout" } },
        });
        var id = (string)task["id"]!;

        var dead = await bob.WaitForAsync(id, t => (bool?)t["dead_lettered"] == true, TimeSpan.FromSeconds(60));

        Assert.Equal("timeout", (string?)dead["status"]);
        Assert.Equal(2, (int?)dead["attempt"]);
        Assert.Equal("time_limit", (string?)dead["result"]!["verdict"]);
        var transitions = dead["transitions"]!.AsArray().Select(t => (string?)t!["to"]).ToList();
        Assert.Equal(["pending", "running", "timeout", "pending", "running", "timeout"], transitions);
        // The retry waited for its backoff (1 s base, ±20% jitter) before running again.
        var firstTimeout = DateTimeOffset.Parse((string)dead["transitions"]![2]!["at"]!, System.Globalization.CultureInfo.InvariantCulture);
        var secondRun = DateTimeOffset.Parse((string)dead["transitions"]![4]!["at"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(secondRun - firstTimeout >= TimeSpan.FromMilliseconds(700), $"retry after {secondRun - firstTimeout}");

        var (listStatus, letters, _) = await bob.SendAsync(HttpMethod.Get, "/v1/dead-letters");
        Assert.Equal(HttpStatusCode.OK, listStatus);
        Assert.Contains(letters!["items"]!.AsArray(), t => (string?)t!["id"] == id);

        var (requeueStatus, requeued, _) = await bob.SendAsync(HttpMethod.Post, $"/v1/dead-letters/{id}/requeue");
        Assert.Equal(HttpStatusCode.OK, requeueStatus);
        Assert.Equal("pending", (string?)requeued!["status"]);
        Assert.Equal(4, (int?)requeued["max_attempts"]);

        var again = await bob.WaitForAsync(id, t => (bool?)t["dead_lettered"] == true && (int?)t["attempt"] == 4, TimeSpan.FromSeconds(60));
        Assert.Equal("timeout", (string?)again["status"]);
    }

    [Fact]
    public async Task Retry_FailedTask_RunsAgain()
    {
        using var bob = fixture.Client(ServeFixture.BobKey);
        var task = await bob.SubmitAsync(new { language = "bash", source = "exit 4" }, wait: true);
        var id = (string)task["id"]!;
        Assert.Equal("failed", (string?)task["status"]);

        var (status, retried, _) = await bob.SendAsync(HttpMethod.Post, $"/v1/tasks/{id}/retry");
        var done = await bob.WaitForAsync(id, t => (int?)t["attempt"] == 2 && (string?)t["status"] == "failed");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("pending", (string?)retried!["status"]);
        Assert.Equal(4, (int?)done["result"]!["exit_code"]);
        Assert.Equal(HttpStatusCode.Conflict, (await bob.SendAsync(HttpMethod.Post, $"/v1/tasks/{(string)(await bob.SubmitAsync(new { language = "bash", source = "true" }, wait: true))["id"]!}/retry")).Status);
    }

    [Fact]
    public async Task PerUserLimit_HoldsWhileAnotherUsersTasksFlow()
    {
        using var alice = fixture.Client(ServeFixture.AliceKey);
        using var bob = fixture.Client(ServeFixture.BobKey);
        var alices = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            alices.Add((string)(await alice.SubmitAsync(new { language = "bash", source = "sleep 1" }))["id"]!);
        }
        var bobs = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            bobs.Add((string)(await bob.SubmitAsync(new { language = "bash", source = "echo quick" }))["id"]!);
        }

        var bobDone = new List<JsonNode>();
        foreach (var id in bobs)
        {
            bobDone.Add(await bob.WaitForStatusAsync(id, "completed"));
        }
        var aliceDone = new List<JsonNode>();
        foreach (var id in alices)
        {
            aliceDone.Add(await alice.WaitForStatusAsync(id, "completed"));
        }

        // Alice's limit is 1: her runs never overlap.
        var intervals = aliceDone
            .Select(t => (Start: DateTimeOffset.Parse((string)t["started_at"]!, System.Globalization.CultureInfo.InvariantCulture), End: DateTimeOffset.Parse((string)t["finished_at"]!, System.Globalization.CultureInfo.InvariantCulture)))
            .OrderBy(t => t.Start).ToList();
        for (var i = 1; i < intervals.Count; i++)
        {
            Assert.True(intervals[i].Start >= intervals[i - 1].End, $"alice ran two tasks at once: {intervals[i - 1]} and {intervals[i]}");
        }
        // Bob was not stuck behind her queue: all his tasks finished before her last one started.
        var bobLast = bobDone.Max(t => DateTimeOffset.Parse((string)t["finished_at"]!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(bobLast < intervals[^1].Start, $"bob finished at {bobLast}, alice's last started at {intervals[^1].Start}");
    }

    [Fact]
    public async Task ServiceEndpoints_AnswerWithTheirShapes()
    {
        using var admin = fixture.Client(ServeFixture.AdminKey);

        var languages = (await admin.SendAsync(HttpMethod.Get, "/v1/languages")).Body!.AsArray();
        var queue = (await admin.SendAsync(HttpMethod.Get, "/v1/queue")).Body!;
        var workers = (await admin.SendAsync(HttpMethod.Get, "/v1/workers")).Body!.AsArray();
        var (readyStatus, ready, _) = await admin.SendAsync(HttpMethod.Get, "/health/ready");
        var metrics = await (await admin.SendAsync(HttpMethod.Get, "/metrics")).Response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var openapi = (await admin.SendAsync(HttpMethod.Get, "/openapi/v1.json")).Body!;

        Assert.Contains(languages, l => (string?)l!["id"] == "python" && !string.IsNullOrEmpty((string?)l["version"]));
        Assert.NotNull(queue["running"]);
        Assert.NotNull(queue["dead_lettered"]);
        Assert.Contains(workers, w => (int?)w!["slots"] == 4);
        Assert.Equal(HttpStatusCode.OK, readyStatus);
        Assert.Equal("ready", (string?)ready!["status"]);
        // An operator sees the host's cgroup mode and the runtime without reading the log.
        var sandbox = ready["details"]!["sandbox"]!;
        Assert.Equal(File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1", (string?)sandbox["cgroup"]);
        Assert.Contains("runs under ", (string?)sandbox["cgroups"], StringComparison.Ordinal);
        Assert.Contains((string?)sandbox["runtime"], new[] { "crun", "runc" });
        Assert.Contains("version", (string?)sandbox["runtime_version"], StringComparison.Ordinal);
        Assert.Contains("runbox_queue_running", metrics, StringComparison.Ordinal);
        Assert.Contains("runbox_attempt_run_seconds_bucket", metrics, StringComparison.Ordinal);
        Assert.NotNull(openapi["paths"]!["/v1/tasks"]);
    }
}
