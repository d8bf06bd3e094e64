using System.Globalization;

namespace Runbox.Sandbox.Cgroups;

/// <summary>
/// Paths for run cgroups (<c>{runs parent}/{prefix}cg{n}</c>, e.g. <c>/runbox/rbx-…cg0</c>): a name is handed out again once the cgroup that
/// had it is gone, so an instance uses as many names as it ever had runs at once.
/// </summary>
/// <remarks>
/// Why not a fresh name per run: the kernel keeps a negative dentry for every removed cgroup name in every
/// hierarchy (five per run on cgroup v1), and nothing bounds them but memory pressure. With a unique name
/// per run the dentry cache grew by five entries per run for as long as the service ran (measured: ~5 per
/// task over 9,000 tasks; the same name made and removed 1,000 times left none).
/// A name never meets a cgroup that exists: a name whose cgroup could not be removed is never given out
/// again, the prefix is this instance's alone (its state folder is locked), and the leftover sweep at
/// start (LeftoverCleaner) removes what a crashed process left, or fails the start, before the first run.
/// </remarks>
internal sealed class RunCgroupNames(string runsParent, string prefix)
{
    private readonly string _stem = runsParent + "/" + prefix + "cg";
    private readonly Lock _gate = new();

    // Most recently freed first: the names in use stay few and their dentries warm.
    private readonly Stack<int> _free = new();
    private readonly HashSet<int> _rented = [];
    private int _minted;

    /// <summary>A path no run cgroup of this instance has now.</summary>
    public string Rent()
    {
        int index;
        lock (_gate)
        {
            index = _free.Count > 0 ? _free.Pop() : _minted++;
            _rented.Add(index);
        }
        return _stem + index.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Gives <paramref name="path"/> back; only once its cgroup is removed in every hierarchy.</summary>
    /// <exception cref="InvalidOperationException">The path is not rented: given back twice, two runs would share a cgroup.</exception>
    public void Return(string path)
    {
        if (!path.StartsWith(_stem, StringComparison.Ordinal)
            || !int.TryParse(path.AsSpan(_stem.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            throw new ArgumentException($"{path} is not a run cgroup path of this instance", nameof(path));
        }
        lock (_gate)
        {
            if (!_rented.Remove(index))
            {
                throw new InvalidOperationException($"{path} is not rented");
            }
            _free.Push(index);
        }
    }
}
