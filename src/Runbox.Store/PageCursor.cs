using System.Buffers.Binary;
using System.Buffers.Text;

namespace Runbox.Store;

/// <summary>The opaque list cursor: the sequence number of the last task on the previous page, base64url.</summary>
internal static class PageCursor
{
    public static string Encode(long seq)
    {
        Span<byte> bytes = stackalloc byte[sizeof(long)];
        BinaryPrimitives.WriteInt64BigEndian(bytes, seq);
        return Base64Url.EncodeToString(bytes);
    }

    /// <exception cref="ArgumentException">The text is not a cursor this store issued.</exception>
    public static long Decode(string cursor)
    {
        Span<byte> bytes = stackalloc byte[sizeof(long)];
        // Validate first: TryDecodeFromChars reports a short buffer as false but throws on bad characters.
        if (Base64Url.IsValid(cursor, out var length) && length == sizeof(long)
            && Base64Url.TryDecodeFromChars(cursor, bytes, out var written) && written == sizeof(long))
        {
            var seq = BinaryPrimitives.ReadInt64BigEndian(bytes);
            if (seq > 0)
            {
                return seq;
            }
        }
        throw new ArgumentException(
            "The cursor is malformed: pass back the next_cursor of a previous page, or no cursor to start at the newest task.",
            nameof(cursor));
    }
}
