using System.Text;
using Runbox.Core.Seams;

namespace Runbox.Worker;

/// <summary>
/// Publishes a run's output as live events, fenced by the attempt's lease: the queue drops a chunk once
/// the lease is lost (the heartbeat then stops the run). Decodes UTF-8 per stream with a stateful
/// decoder so a character split across two reads is not mangled.
/// </summary>
internal sealed class TaskEventsOutputSink(ITaskEvents events, Guid taskId, int attempt, long fence) : IOutputSink
{
    private readonly Decoder _stdout = new UTF8Encoding(false).GetDecoder();
    private readonly Decoder _stderr = new UTF8Encoding(false).GetDecoder();

    public async ValueTask WriteAsync(OutputStream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        var decoder = stream == OutputStream.Stdout ? _stdout : _stderr;
        var chars = new char[decoder.GetCharCount(chunk.Span, flush: false)];
        var count = decoder.GetChars(chunk.Span, chars, flush: false);
        if (count == 0)
        {
            return;
        }
        var name = stream == OutputStream.Stdout ? "stdout" : "stderr";
        // A refused chunk is not retried: the attempt it belongs to no longer holds the task.
        await events.PublishOutputAsync(taskId, fence, new TaskEvent("output", new string(chars, 0, count)) { Stream = name, Attempt = attempt }, cancellationToken);
    }
}
