using Runbox.Core.Seams;

namespace Runbox.Api;

/// <summary>
/// In an API process without a sandbox of its own, the languages are those the live workers registered
/// (the union), so it offers exactly what some worker can run; a stopped worker's drop out with its
/// registration. Read at most every <see cref="CacheFor"/>.
/// </summary>
public sealed class WorkerLanguageDirectory(ITaskQueue queue, TimeProvider time) : ILanguageDirectory
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(2);

    private IReadOnlyList<LanguageInfo> _cached = [];
    private long? _cachedAt;

    public async Task<IReadOnlyList<LanguageInfo>> GetAsync(CancellationToken cancellationToken)
    {
        if (_cachedAt is { } at && time.GetElapsedTime(at) < CacheFor)
        {
            return _cached;
        }
        var workers = await queue.ListWorkersAsync(cancellationToken);
        _cached = workers
            .SelectMany(w => w.Languages)
            .GroupBy(l => l.Id, StringComparer.Ordinal)
            .Select(g => g.First())
            .OrderBy(l => l.Id, StringComparer.Ordinal)
            .ToList();
        _cachedAt = time.GetTimestamp();
        return _cached;
    }
}
