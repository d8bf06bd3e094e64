using Runbox.Core.Seams;

namespace Runbox.Api;

/// <summary>The languages this deployment's workers offer; submissions are checked against it.</summary>
public interface ILanguageDirectory
{
    Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken);
}
