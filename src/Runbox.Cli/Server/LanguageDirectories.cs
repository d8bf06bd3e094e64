using Runbox.Api;
using Runbox.Api.Endpoints;
using Runbox.Core.Seams;

namespace Runbox.Cli.Server;

/// <summary>In a process that runs tasks, the languages are the local sandbox's.</summary>
internal sealed class SandboxLanguageDirectory(ISandbox sandbox) : ILanguageDirectory
{
    public Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken) => Task.FromResult(sandbox.Languages);
}

internal sealed class SandboxReadinessCheck(ISandbox sandbox) : IReadinessCheck
{
    public string Name => "sandbox";

    public Task<string?> CheckAsync(CancellationToken cancellationToken) =>
        Task.FromResult(sandbox.Languages.Count > 0 ? null : "no language toolchain is available to the sandbox");
}
