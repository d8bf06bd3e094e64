using System.Text;

namespace Runbox.Cli.Client;

/// <summary>
/// A program's output on its way to a person's terminal. A program may print escape sequences that a
/// terminal obeys (retitle the window, write the clipboard with OSC 52, redefine keys on some): where the
/// output goes to a terminal, every control character but newline, tab and carriage return is shown in
/// caret notation instead (ESC as <c>^[</c>). Output that goes to a pipe or a file stays byte for byte.
/// </summary>
internal static class TerminalText
{
    public static string Shown(string text, bool toTerminal)
    {
        if (!toTerminal || !text.Any(IsHidden))
        {
            return text;
        }
        var shown = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (!IsHidden(c))
            {
                shown.Append(c);
            }
            else if (c < 0x20 || c == 0x7f)
            {
                shown.Append('^').Append((char)(c ^ 0x40));
            }
            else
            {
                // C1 controls (U+0080-U+009F), which some terminals take like ESC and a letter.
                shown.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return shown.ToString();
    }

    private static bool IsHidden(char c) => c is not ('\n' or '\t' or '\r') && (c < 0x20 || c is >= '\u007f' and <= '\u009f');
}
