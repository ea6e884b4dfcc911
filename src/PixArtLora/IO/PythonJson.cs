using System.Text;

namespace PixArtLora.IO;

/// <summary>JSON as Python's json module writes it.</summary>
public static class PythonJson
{
    /// <summary>
    /// Python's json module writes -Infinity / Infinity / NaN as bare words (diffusers' lambda_min_clipped);
    /// System.Text.Json accepts them only as strings, so bare occurrences outside strings are quoted.
    /// </summary>
    public static string QuoteFloatLiterals(string json)
    {
        var sb = new StringBuilder(json.Length + 16);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (inString)
            {
                sb.Append(c);
                if (c == '\\' && i + 1 < json.Length) sb.Append(json[++i]);
                else if (c == '"') inString = false;
                continue;
            }
            if (c == '"') { inString = true; sb.Append(c); continue; }
            string? word = null;
            foreach (var w in new[] { "-Infinity", "Infinity", "NaN" })
                if (string.CompareOrdinal(json, i, w, 0, w.Length) == 0) { word = w; break; }
            if (word != null) { sb.Append('"').Append(word).Append('"'); i += word.Length - 1; }
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
