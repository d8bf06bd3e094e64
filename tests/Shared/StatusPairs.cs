using Runbox.Core.Tasks;

namespace Runbox.Tests.Shared;

/// <summary>Test data shared by the test projects that link this file (see their .csproj).</summary>
public static class StatusPairs
{
    /// <summary>Every (from, to) cell of the transition table, allowed or not.</summary>
    public static TheoryData<TaskStatus, TaskStatus> EveryCell()
    {
        var data = new TheoryData<TaskStatus, TaskStatus>();
        foreach (var from in Enum.GetValues<TaskStatus>())
        {
            foreach (var to in Enum.GetValues<TaskStatus>())
            {
                data.Add(from, to);
            }
        }
        return data;
    }
}
