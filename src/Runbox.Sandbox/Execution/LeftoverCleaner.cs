using Microsoft.Extensions.Logging;
using Runbox.Sandbox.Cgroups;
using Runbox.Sandbox.Runtime;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// Removes what a crashed process of this instance left: containers (which keep running when the service
/// dies), their cgroups, and run folders with their mounted /work. Only names with this instance's
/// prefix are touched.
/// </summary>
internal sealed class LeftoverCleaner(string prefix, Cgroupfs cgroups, ILogger logger)
{
    public async Task CleanAsync(IEnumerable<OciRuntime> runtimes, string runsDirectory)
    {
        foreach (var runtime in runtimes)
        {
            foreach (var id in await runtime.ListAsync())
            {
                if (id.StartsWith(prefix, StringComparison.Ordinal) && await runtime.DeleteAsync(id))
                {
                    Log.LeftoverRemoved(logger, runtime.Name + " container", id);
                }
            }
        }

        // Run cgroups (with the container's beneath, if its runtime died too) in every hierarchy.
        var runCgroups = cgroups.Directories(cgroups.RunsParent)
            .Where(Directory.Exists)
            .SelectMany(parent => Directory.EnumerateDirectories(parent, prefix + "*"))
            .Select(Path.GetFileName)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        foreach (var name in runCgroups)
        {
            foreach (var removed in cgroups.Remove(cgroups.RunsParent + "/" + name))
            {
                Log.LeftoverRemoved(logger, "cgroup", removed);
            }
        }

        if (Directory.Exists(runsDirectory))
        {
            foreach (var run in Directory.EnumerateDirectories(runsDirectory))
            {
                RunDirectory.Remove(run);
                Log.LeftoverRemoved(logger, "run folder", run);
            }
        }
    }
}
