using System.Text;
using System.Text.RegularExpressions;

namespace PixArtLora.Hub;

/// <summary>
/// File selection as huggingface_hub's <c>allow_patterns</c> does it: Python <c>fnmatch</c> on repo-relative
/// paths (<c>*</c> also crosses <c>/</c>, <c>?</c> is one character, <c>[...]</c> a set), case-sensitive, and a
/// pattern ending in <c>/</c> selects the whole folder (<c>transformer/</c> = <c>transformer/*</c>).
/// </summary>
public static class HubFilePatterns
{
    /// <summary>True when <paramref name="path"/> matches <paramref name="pattern"/>.</summary>
    public static bool Matches(string path, string pattern) => ToRegex(pattern).IsMatch(path);

    /// <summary>True when the pattern names exactly one file (no wildcard).</summary>
    public static bool IsLiteral(string pattern) => pattern.IndexOfAny(new[] { '*', '?', '[' }) < 0 && !pattern.EndsWith('/');

    /// <summary>The paths matching any pattern (all paths when <paramref name="patterns"/> is null or empty).</summary>
    public static List<string> Select(IEnumerable<string> paths, IReadOnlyList<string>? patterns)
    {
        if (patterns is not { Count: > 0 }) return paths.ToList();
        var regexes = patterns.Select(ToRegex).ToList();
        return paths.Where(p => regexes.Any(r => r.IsMatch(p))).ToList();
    }

    static Regex ToRegex(string pattern)
    {
        if (pattern.EndsWith('/')) pattern += "*";
        var sb = new StringBuilder("^");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '*') sb.Append(".*");
            else if (c == '?') sb.Append('.');
            else if (c == '[' && pattern.IndexOf(']', i + 2) is int close and > 0)
            {
                string set = pattern[(i + 1)..close];
                sb.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                i = close;
            }
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant);
    }
}
