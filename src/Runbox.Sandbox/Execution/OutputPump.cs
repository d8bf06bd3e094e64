using Runbox.Core.Seams;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// Reads one of the container's output pipes to its end: keeps and forwards up to the cap, then reports
/// the overflow once and keeps draining (so the program never blocks on a full pipe before it is killed).
/// </summary>
internal sealed class OutputPump
{
    private const int ChunkBytes = 16 * 1024;

    private readonly Stream _pipe;
    private readonly OutputStream _stream;
    private readonly long _cap;
    private readonly IOutputSink _sink;
    private readonly Action _onOverflow;
    private byte[] _kept = [];
    private int _length;

    public OutputPump(Stream pipe, OutputStream stream, long cap, IOutputSink sink, Action onOverflow)
    {
        _pipe = pipe;
        _stream = stream;
        _cap = cap;
        _sink = sink;
        _onOverflow = onOverflow;
        Completion = PumpAsync();
    }

    /// <summary>Completes at end of file: when every process holding the pipe has exited.</summary>
    public Task Completion { get; }

    public bool Truncated { get; private set; }

    /// <summary>The kept bytes; read only after <see cref="Completion"/>.</summary>
    public ReadOnlyMemory<byte> Content => _kept.AsMemory(0, _length);

    private async Task PumpAsync()
    {
        // Leave the constructor before the first read, so the pump never runs on the caller's stack.
        await Task.Yield();
        var chunk = new byte[ChunkBytes];
        await using var pipe = _pipe;
        int read;
        while ((read = await pipe.ReadAsync(chunk)) > 0)
        {
            var keep = (int)Math.Min(read, _cap - _length);
            if (keep > 0)
            {
                Append(chunk, keep);
                // A slice of the kept bytes, which are never overwritten: the sink may hold on to it.
                await _sink.WriteAsync(_stream, _kept.AsMemory(_length - keep, keep), CancellationToken.None);
            }
            if (keep < read && !Truncated)
            {
                Truncated = true;
                _onOverflow();
            }
        }
    }

    private void Append(byte[] chunk, int count)
    {
        if (_length + count > _kept.Length)
        {
            var grown = new byte[(int)Math.Min(_cap, Math.Max(_kept.Length * 2L, _length + count + ChunkBytes))];
            _kept.AsSpan(0, _length).CopyTo(grown);
            _kept = grown;
        }
        chunk.AsSpan(0, count).CopyTo(_kept.AsSpan(_length));
        _length += count;
    }
}
