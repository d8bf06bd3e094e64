using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Runbox.Queue.Tests;

/// <summary>
/// The one schema of the queue scripts' arguments: each script declares it on its first line, every call
/// is checked against it, and no script reads an argument it does not declare.
/// </summary>
public sealed partial class ScriptArgumentsTests(RedisFixture redis)
{
    private const string ResourcePrefix = "Runbox.Queue.Lua.";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Every script the queue assembly ships, by name.</summary>
    private static IEnumerable<string> ScriptNames() =>
        typeof(RedisScripts).Assembly.GetManifestResourceNames()
            .Where(resource => resource.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .Select(resource => resource[ResourcePrefix.Length..^".lua".Length])
            .Order(StringComparer.Ordinal);

    [Fact]
    public void Parse_RequiredOptionalAndGroup_CheckCounts()
    {
        var fixedList = ScriptArguments.Parse("a", "--! args: id fence\n");
        fixedList.Check(2);
        Assert.Throws<ArgumentException>(() => fixedList.Check(1));
        Assert.Throws<ArgumentException>(() => fixedList.Check(3));

        var optional = ScriptArguments.Parse("b", "--! args: id [fence note]\n");
        optional.Check(1);
        optional.Check(3);
        Assert.Throws<ArgumentException>(() => optional.Check(4));

        var group = ScriptArguments.Parse("c", "--! args: lease_ms (id fence)...\n");
        group.Check(3);
        group.Check(5);
        Assert.Throws<ArgumentException>(() => group.Check(1));
        Assert.Throws<ArgumentException>(() => group.Check(4));

        var none = ScriptArguments.Parse("d", "--! args:\nreturn 1");
        none.Check(0);
        Assert.Throws<ArgumentException>(() => none.Check(1));
    }

    [Fact]
    public void After_Prelude_ComesFirst_AndTheMessageSaysTheSchema()
    {
        var prelude = ScriptArguments.Parse("common", "--! args: prefix now\n");
        var claim = ScriptArguments.Parse("claim", "--! args: worker max\n").After(prelude);

        Assert.Equal(["prefix", "now", "worker", "max"], claim.Required);
        var error = Assert.Throws<ArgumentException>(() => claim.Check(3));
        Assert.Equal("claim.lua takes prefix now worker max (4); the call passed 3 argument(s).", error.Message);
    }

    [Theory]
    [InlineData("-- ARGV[6]: id\n")]
    [InlineData("--! args: id (a b)... [c]\n")]
    [InlineData("--! args: [a] b\n")]
    [InlineData("--! args: id [a] (b c)...\n")]
    [InlineData("--! args: id id\n")]
    [InlineData("--! args: Id\n")]
    [InlineData("--! args: (a b)\n")]
    public void Parse_BadDeclaration_IsRefused(string text) =>
        Assert.Throws<FormatException>(() => ScriptArguments.Parse("bad", text));

    [Fact]
    public void EveryScript_DeclaresItsArguments_AndReadsNoArgumentBeyondThem()
    {
        var prelude = ScriptArguments.Parse("common", RedisScripts.ReadResource("common"));
        var names = ScriptNames().ToList();
        Assert.True(names.Count >= 18, string.Join(", ", names));

        foreach (var name in names)
        {
            var text = RedisScripts.ReadResource(name);
            var own = ScriptArguments.Parse(name, text);
            // The standalone event script is loaded alone; every other script after the prelude.
            var declared = name is "common" or "publish_event" ? own : own.After(prelude);
            foreach (Match read in ArgumentRead().Matches(text))
            {
                var index = int.Parse(read.Groups["index"].Value, CultureInfo.InvariantCulture);
                Assert.True(index <= declared.LastFixedIndex, $"{name}.lua reads ARGV[{index}] but declares {declared}");
            }
            if (declared.Group.Count == 0)
            {
                Assert.DoesNotContain("#ARGV", text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void EveryQueueScript_LoadsWithItsSchema()
    {
        var names = ScriptNames().Where(name => name is not "common" and not "publish_event").ToList();
        var scripts = new RedisScripts(redis.Redis, NullLogger.Instance, names, ["publish_event"]);

        Assert.Equal(["prefix", "now", "default_limit", "transitions_cap", "retention_ms", "worker", "max", "lease_ms", "promote"], scripts.ArgumentsOf("claim").Required);
        Assert.Equal(["id", "fence"], scripts.ArgumentsOf("heartbeat").Group);
        Assert.Equal(["fence"], scripts.ArgumentsOf("publish_event").Optional);
    }

    [Fact]
    public async Task Evaluate_WrongArgumentCount_FailsBeforeRedisRunsTheScript()
    {
        var scripts = new RedisScripts(redis.Redis, NullLogger.Instance, ["claim"], []);
        var prefix = $"{{rbx-schema-{Guid.NewGuid():N}}}:";
        RedisKey[] keys = [.. Enumerable.Range(1, 11).Select(i => (RedisKey)(prefix + i))];
        // The common five and a worker, but no max, lease or promote count: claim.lua would read nil.
        RedisValue[] args = [prefix, 0, 4, 100, 1000, "w1"];

        var error = await Assert.ThrowsAsync<ArgumentException>(() => scripts.EvaluateAsync("claim", keys, args, Token));

        Assert.StartsWith("claim.lua takes prefix now default_limit transitions_cap retention_ms worker max lease_ms promote (9)", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, await redis.Redis.GetDatabase().KeyExistsAsync(keys));
    }

    [GeneratedRegex(@"ARGV\[(?<index>[0-9]+)\]", RegexOptions.CultureInvariant)]
    private static partial Regex ArgumentRead();
}
