using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using Runbox.Sandbox.Native;

namespace Runbox.Sandbox.Execution;

/// <summary>
/// Tells a launch when the runtime has written its container's pid file (the sign that the container is
/// set up), through inotify instead of polling. Under a burst a launch waits tens of milliseconds for the
/// CPU, and looking for the file every millisecond meant as many timer wake-ups, thread-pool hops and
/// stats per container (about 3% of the server's CPU in a profile of 1,000 concurrent launches; the gain
/// in wall time was within the VM's noise, docs/benchmarks.md). One inotify instance and one reader
/// thread serve every launch of a sandbox.
/// </summary>
internal sealed class PidFileWatcher : IDisposable
{
    private const string PidFileName = "pid";

    private readonly Libc.Inotify _inotify;
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _waiting = new();
    private readonly Thread _reader;
    private int _disposed;

    public PidFileWatcher()
    {
        _inotify = Libc.Inotify.Create();
        _reader = new Thread(ReadEvents) { IsBackground = true, Name = "runbox pid-file watcher" };
        _reader.Start();
    }

    /// <summary>
    /// Starts watching <paramref name="bundleDirectory"/> for its pid file; call before the runtime starts,
    /// so that no write goes unseen. Dispose the watch when the launch is over.
    /// </summary>
    /// <exception cref="IOException">inotify refused the watch.</exception>
    public Watch Start(string bundleDirectory)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var descriptor = _inotify.AddWatch(bundleDirectory);
        _waiting[descriptor] = signal;
        return new Watch(this, descriptor, signal.Task);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        _inotify.Stop();
        _reader.Join();
        _inotify.Dispose();
        ReleaseAll();
    }

    private void Stop(int descriptor)
    {
        if (_waiting.TryRemove(descriptor, out _))
        {
            _inotify.RemoveWatch(descriptor);
        }
    }

    private void ReadEvents()
    {
        try
        {
            ReadEventsUntilStopped();
        }
        catch (IOException)
        {
            // inotify failed: launches still see their pid files, at the slower fallback pace of their own checks.
            ReleaseAll();
        }
    }

    private void ReleaseAll()
    {
        foreach (var signal in _waiting.Values)
        {
            signal.TrySetResult();
        }
    }

    private void ReadEventsUntilStopped()
    {
        var buffer = new byte[64 * 1024];
        while (_inotify.Read(buffer) is var length and > 0)
        {
            // struct inotify_event: int wd; uint32 mask; uint32 cookie; uint32 len; char name[len].
            for (var offset = 0; offset + 16 <= length;)
            {
                var descriptor = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(offset));
                var mask = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset + 4));
                var nameLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset + 12));
                var name = Encoding.UTF8.GetString(buffer.AsSpan(offset + 16, nameLength)).TrimEnd('\0');
                offset += 16 + nameLength;
                if ((mask & Libc.Inotify.QueueOverflow) != 0)
                {
                    // Events were lost: every launch looks for its pid file again.
                    ReleaseAll();
                }
                else if (name == PidFileName && _waiting.TryGetValue(descriptor, out var signal))
                {
                    signal.TrySetResult();
                }
            }
        }
    }

    /// <summary>One launch's watch: <see cref="Written"/> completes when the pid file may have appeared.</summary>
    public sealed class Watch(PidFileWatcher watcher, int descriptor, Task written) : IDisposable
    {
        public Task Written { get; } = written;

        public void Dispose() => watcher.Stop(descriptor);
    }
}
