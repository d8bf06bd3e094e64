using System.Diagnostics;
using System.Globalization;
using Runbox.Sandbox.Execution;

namespace Runbox.Sandbox.Tests;

/// <summary>On this host: real lock files, real processes. A range of its own, away from the sandboxes the other tests start.</summary>
public sealed class SandboxUidsTests : IDisposable
{
    private const long RangeStart = 0x7F000000;
    private const long RangeLength = SandboxUids.BlockSize * 4L;

    private readonly string _locks = Directory.CreateTempSubdirectory("runbox-uids-").FullName;

    public void Dispose() => Directory.Delete(_locks, recursive: true);

    [Fact]
    public void Claim_TwoInstances_GetBlocksOfTheirOwn_AndAFreedBlockIsTakenAgain()
    {
        using (var first = SandboxUids.Claim(RangeStart, RangeLength, _locks))
        using (var second = SandboxUids.Claim(RangeStart, RangeLength, _locks))
        {
            Assert.Equal(RangeStart, first.First);
            Assert.Equal(RangeStart + SandboxUids.BlockSize, second.First);
        }

        using var again = SandboxUids.Claim(RangeStart, RangeLength, _locks);
        Assert.Equal(RangeStart, again.First);
    }

    [Fact]
    public void Rent_SeveralRunsAtOnce_EachGetsItsOwnUid_TheLowestFreeFirst()
    {
        using var uids = SandboxUids.Claim(RangeStart, RangeLength, _locks);

        var a = uids.Rent();
        var b = uids.Rent();
        uids.Return(a);
        var c = uids.Rent();

        Assert.NotEqual(a, b);
        Assert.Equal(a, c);
        Assert.Throws<InvalidOperationException>(() => uids.Return(a + 100));
    }

    /// <summary>Finding 5 of the security review: a uid a host account has would share that account's per-user limits and files.</summary>
    [Fact]
    public void Claim_RangeHoldingAHostAccount_IsRefusedWithTheAccountNamed()
    {
        var passwd = Path.Combine(_locks, "passwd");
        File.WriteAllText(passwd, $"root:x:0:0::/root:/bin/sh\nbuilder:x:{RangeStart + 5}:100::/home/builder:/bin/sh\n");

        var refused = Assert.Throws<SandboxException>(() => SandboxUids.Claim(RangeStart, RangeLength, _locks, [passwd]));

        Assert.Contains("builder", refused.Message, StringComparison.Ordinal);
        Assert.Contains("UidRangeStart", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>A process left running as a uid of the block by an instance that died shares nothing with the next runs: it is killed.</summary>
    [Fact]
    public async Task Claim_ProcessLeftRunningAsAUidOfTheBlock_IsKilled()
    {
        var uid = (RangeStart + 7).ToString(CultureInfo.InvariantCulture);
        using var leftover = Process.Start("setpriv", ["--reuid", uid, "--regid", uid, "--clear-groups", "sleep", "300"]);
        await WaitUntilAsync(() => File.ReadAllText($"/proc/{leftover.Id}/status").Contains($"Uid:\t{uid}", StringComparison.Ordinal));

        using var uids = SandboxUids.Claim(RangeStart, RangeLength, _locks);

        Assert.True(leftover.WaitForExit(TimeSpan.FromSeconds(10)));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++)
        {
            await Task.Delay(50);
        }
    }
}
