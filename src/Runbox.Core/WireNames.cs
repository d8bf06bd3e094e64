namespace Runbox.Core;

/// <summary>Reads the wire name of an enum value back, given the one function that writes it.</summary>
internal static class WireNames
{
    public static bool TryParse<T>(string? text, Func<T, string> toWire, out T value)
        where T : struct, Enum
    {
        foreach (var candidate in Enum.GetValues<T>())
        {
            if (string.Equals(toWire(candidate), text, StringComparison.Ordinal))
            {
                value = candidate;
                return true;
            }
        }
        value = default;
        return false;
    }
}
