using Runbox.Api;
using Runbox.Api.Endpoints;
using Runbox.Core.Seams;
using Runbox.Sandbox;

namespace Runbox.Cli.Server;

/// <summary>In a process that runs tasks, the languages are the local sandbox's.</summary>
internal sealed class SandboxLanguageDirectory(ISandbox sandbox) : ILanguageDirectory
{
    public Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken) => Task.FromResult(sandbox.Languages);
}

/// <summary>Ready once the sandbox has started with at least one language; names the host's cgroup mode and the runtime.</summary>
internal sealed class SandboxReadinessCheck(OciSandbox sandbox) : IReadinessCheck
{
    public string Name => "sandbox";

    public Task<string?> CheckAsync(CancellationToken cancellationToken) =>
        Task.FromResult(sandbox.Languages.Count > 0 ? null : "no language toolchain is available to the sandbox");

    public IReadOnlyDictionary<string, string>? Details => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["cgroup"] = sandbox.CgroupVersion,
        ["cgroups"] = sandbox.Cgroups,
        ["runtime"] = sandbox.RuntimeName,
        ["runtime_version"] = sandbox.RuntimeVersion,
    };
}
