using System.Globalization;

namespace Runbox.EndToEnd.Tests.Faults;

/// <summary>
/// A test host on its own network: a network namespace joined to this machine by a veth pair on a
/// private /30. Cutting the link partitions whatever runs inside from Redis on the host.
/// </summary>
public sealed class NetworkHost : IAsyncDisposable
{
    private readonly int _index;

    private NetworkHost(int index) => _index = index;

    public string Namespace => $"rbx-net-{_index}";
    public string HostAddress => $"10.231.{_index}.1";
    public string GuestAddress => $"10.231.{_index}.2";
    private string HostLink => $"rbxh{_index}";
    private string GuestLink => $"rbxg{_index}";

    /// <summary>The namespace's handle for nsenter, which (unlike `ip netns exec`) leaves /sys and the cgroup mounts alone.</summary>
    public string NamespacePath => $"/run/netns/{Namespace}";

    public static async Task<NetworkHost> CreateAsync()
    {
        var host = new NetworkHost(Random.Shared.Next(1, 250));
        await host.TeardownAsync();
        await Ip("netns", "add", host.Namespace);
        await Ip("link", "add", host.HostLink, "type", "veth", "peer", "name", host.GuestLink);
        await Ip("link", "set", host.GuestLink, "netns", host.Namespace);
        await Ip("addr", "add", host.HostAddress + "/30", "dev", host.HostLink);
        await Ip("link", "set", host.HostLink, "up");
        await Ip("netns", "exec", host.Namespace, "ip", "addr", "add", host.GuestAddress + "/30", "dev", host.GuestLink);
        await Ip("netns", "exec", host.Namespace, "ip", "link", "set", host.GuestLink, "up");
        await Ip("netns", "exec", host.Namespace, "ip", "link", "set", "lo", "up");
        return host;
    }

    public Task CutAsync() => Ip("link", "set", HostLink, "down");

    public Task RestoreAsync() => Ip("link", "set", HostLink, "up");

    public async ValueTask DisposeAsync() => await TeardownAsync();

    private async Task TeardownAsync()
    {
        await FaultEnvironment.RunAsync("ip", "link", "del", HostLink);
        await FaultEnvironment.RunAsync("ip", "netns", "del", Namespace);
    }

    private static async Task Ip(params string[] args)
    {
        var (code, output) = await FaultEnvironment.RunWithCodeAsync("ip", args);
        Assert.True(code == 0, $"ip {string.Join(' ', args)} failed ({code}): {output}");
    }

    public override string ToString() => Namespace + " " + _index.ToString(CultureInfo.InvariantCulture);
}
