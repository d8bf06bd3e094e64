using Runbox.Sandbox.Cgroups;

namespace Runbox.Sandbox.Tests;

public class RunCgroupNamesTests
{
    private const string Prefix = "rbx-0123abcd-";

    [Fact]
    public void Rent_WhileHeld_GivesDistinctPathsUnderTheRunboxParentWithThePrefix()
    {
        var names = new RunCgroupNames("/runbox", Prefix);

        var paths = Enumerable.Range(0, 50).Select(_ => names.Rent()).ToList();

        Assert.Equal(50, paths.Distinct().Count());
        Assert.All(paths, path => Assert.StartsWith("/runbox/" + Prefix, path, StringComparison.Ordinal));
    }

    [Fact]
    public void Rent_AfterReturn_GivesTheReturnedPathAgain()
    {
        var names = new RunCgroupNames("/runbox", Prefix);
        var first = names.Rent();
        var second = names.Rent();

        names.Return(first);

        Assert.Equal(first, names.Rent());
        Assert.NotEqual(second, first);
    }

    [Fact]
    public void Rent_RunsOneAfterAnother_UseOneName()
    {
        var names = new RunCgroupNames("/runbox", Prefix);

        var paths = Enumerable.Range(0, 1000).Select(_ =>
        {
            var path = names.Rent();
            names.Return(path);
            return path;
        }).Distinct().ToList();

        Assert.Single(paths);
    }

    [Fact]
    public void Rent_PathNeverReturned_IsNotGivenOutAgain()
    {
        // A cgroup that could not be removed keeps its name: a second run must not share its cgroup.
        var names = new RunCgroupNames("/runbox", Prefix);
        var stuck = names.Rent();

        var later = Enumerable.Range(0, 100).Select(_ =>
        {
            var path = names.Rent();
            names.Return(path);
            return path;
        }).ToList();

        Assert.DoesNotContain(stuck, later);
    }

    [Fact]
    public void Return_Twice_Throws()
    {
        var names = new RunCgroupNames("/runbox", Prefix);
        var path = names.Rent();
        names.Return(path);

        Assert.Throws<InvalidOperationException>(() => names.Return(path));
    }

    [Fact]
    public void Return_PathOfAnotherInstance_Throws()
    {
        var names = new RunCgroupNames("/runbox", Prefix);
        var other = new RunCgroupNames("/runbox", "rbx-ffffffff-").Rent();

        Assert.Throws<ArgumentException>(() => names.Return(other));
    }

    [Fact]
    public async Task Rent_ConcurrentRunners_NeverHoldTheSamePathAtOnce()
    {
        var names = new RunCgroupNames("/runbox", Prefix);
        var held = new System.Collections.Concurrent.ConcurrentDictionary<string, byte>();
        var clashes = 0;

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                var path = names.Rent();
                if (!held.TryAdd(path, 0))
                {
                    Interlocked.Increment(ref clashes);
                }
                held.TryRemove(path, out byte _);
                names.Return(path);
            }
        }, TestContext.Current.CancellationToken)));

        Assert.Equal(0, clashes);
    }
}
