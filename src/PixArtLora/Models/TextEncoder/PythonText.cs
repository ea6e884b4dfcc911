using System.Globalization;
using System.Text;

namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// Python's <c>str.lower()</c>, <c>str.strip()</c> and whitespace test, which the reference pipelines and
/// tokenizer apply to prompts. .NET's casing differs in two places Python follows Unicode's full mapping:
/// 'İ' (U+0130) lower-cases to "i̇" (two code points), and 'Σ' becomes final 'ς' at the end of a word.
/// </summary>
public static class PythonText
{
    /// <summary>Python's <c>str.isspace()</c> for one character (<c>Py_UNICODE_ISSPACE</c>).</summary>
    public static bool IsSpace(char c) => c switch
    {
        '\t' or '\n' or '\v' or '\f' or '\r' or '\x1c' or '\x1d' or '\x1e' or '\x1f' or ' ' or '\x85' or '\xa0' => true,
        '\u1680' or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    /// <summary>Python's <c>str.strip()</c> with no argument.</summary>
    public static string Strip(string text) => RStrip(LStrip(text));

    public static string LStrip(string text)
    {
        int i = 0;
        while (i < text.Length && IsSpace(text[i])) i++;
        return text[i..];
    }

    public static string RStrip(string text)
    {
        int end = text.Length;
        while (end > 0 && IsSpace(text[end - 1])) end--;
        return text[..end];
    }

    /// <summary>Python's <c>str.lower()</c>: full Unicode lower-case mapping, with the Final_Sigma rule.</summary>
    public static string Lower(string text)
    {
        var runes = text.EnumerateRunes().ToArray();
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < runes.Length; i++)
        {
            int cp = runes[i].Value;
            if (cp == 0x130) sb.Append("i\u0307");
            else if (cp == 0x3A3) sb.Append(IsFinalSigma(runes, i) ? 'ς' : 'σ');
            else sb.Append(Rune.ToLowerInvariant(runes[i]).ToString());
        }
        return sb.ToString();
    }

    // Unicode's Final_Sigma: preceded by a cased letter (skipping case-ignorables) and not followed by one.
    static bool IsFinalSigma(Rune[] runes, int i)
    {
        int j = i - 1;
        while (j >= 0 && IsCaseIgnorable(runes[j])) j--;
        if (j < 0 || !IsCased(runes[j])) return false;
        j = i + 1;
        while (j < runes.Length && IsCaseIgnorable(runes[j])) j++;
        return j == runes.Length || !IsCased(runes[j]);
    }

    static bool IsCased(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    // Case_Ignorable: Mn, Me, Cf, Lm, Sk, plus the Word_Break MidLetter / MidNumLet / Single_Quote characters.
    static bool IsCaseIgnorable(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark
            or UnicodeCategory.EnclosingMark or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol
        || r.Value is '\'' or '.' or ':' or 0xB7 or 0x387 or 0x55F or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;
}
