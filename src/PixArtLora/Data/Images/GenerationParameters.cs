using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PixArtLora.Data.Images;

/// <summary>A LoRA applied during generation, with its strength.</summary>
public sealed record LoraReference(string Name, double Scale);

/// <summary>
/// How an image was generated, in the "infotext" convention of AUTOMATIC1111's web UI that other Stable
/// Diffusion tools read from a PNG's <c>parameters</c> text chunk:
/// <code>
/// prompt (any number of lines)
/// Negative prompt: negative prompt
/// Steps: 20, Sampler: DPM++ 2M, CFG scale: 4.5, Seed: 1, Size: 512x512, Model: name, Lora: "name:0.8"
/// </code>
/// A value containing ',', ':' or a line break is written as a JSON string, and the last line counts as the
/// parameter line only when it holds at least three "Key: value" entries (both rules are A1111's).
/// Prompt lines are trimmed when parsed, as A1111 does. Unknown keys are kept in <see cref="Extra"/>, in order.
/// </summary>
public sealed record GenerationParameters
{
    public string Prompt { get; init; } = "";
    public string NegativePrompt { get; init; } = "";
    public int? Steps { get; init; }
    public string? Sampler { get; init; }
    public double? CfgScale { get; init; }
    public long? Seed { get; init; }
    public int? Width { get; init; }
    public int? Height { get; init; }
    public string? Model { get; init; }
    public IReadOnlyList<LoraReference> Loras { get; init; } = [];
    /// <summary>Other "Key: value" entries (e.g. "Model hash", "Version"), written after the known ones.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Extra { get; init; } = [];

    static readonly Regex ParamPattern = new(@"\s*(\w[\w \-/]+):\s*(""(?:\\.|[^\\""])+""|[^,]*)(?:,|$)", RegexOptions.Compiled);
    static readonly Regex SizePattern = new(@"^(\d+)x(\d+)$", RegexOptions.Compiled);
    static readonly JsonSerializerOptions JsonText = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    const string NegativePrefix = "Negative prompt:";

    /// <summary>The infotext string stored in the PNG <c>parameters</c> chunk.</summary>
    public string ToInfotext()
    {
        var entries = new List<(string Key, string Value)>();
        if (Steps is { } steps) entries.Add(("Steps", steps.ToString(CultureInfo.InvariantCulture)));
        if (Sampler is { } sampler) entries.Add(("Sampler", sampler));
        if (CfgScale is { } cfg) entries.Add(("CFG scale", Number(cfg)));
        if (Seed is { } seed) entries.Add(("Seed", seed.ToString(CultureInfo.InvariantCulture)));
        if (Width is { } w && Height is { } h) entries.Add(("Size", $"{w}x{h}"));
        if (Model is { } model) entries.Add(("Model", model));
        if (Loras.Count > 0) entries.Add(("Lora", string.Join(", ", Loras.Select(FormatLora))));
        entries.AddRange(Extra.Select(kv => (kv.Key, kv.Value)));

        var text = Prompt;
        if (NegativePrompt.Length > 0) text += $"\n{NegativePrefix} {NegativePrompt}";
        if (entries.Count > 0) text += "\n" + string.Join(", ", entries.Select(e => $"{CheckKey(e.Key)}: {Quote(e.Value)}"));
        return text.Trim();
    }

    /// <summary>Parses infotext written by this class, by A1111 or by tools following its convention.</summary>
    public static GenerationParameters Parse(string infotext)
    {
        var lines = infotext.Trim().Replace("\r\n", "\n").Split('\n').ToList();
        var paramLine = lines[^1];
        var matches = ParamPattern.Matches(paramLine);
        if (matches.Count < 3) paramLine = "";
        else lines.RemoveAt(lines.Count - 1);

        var prompt = new List<string>();
        var negative = new List<string>();
        bool inNegative = false;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith(NegativePrefix, StringComparison.Ordinal)) { inNegative = true; line = line[NegativePrefix.Length..].Trim(); }
            (inNegative ? negative : prompt).Add(line);
        }

        var result = new GenerationParameters { Prompt = string.Join("\n", prompt), NegativePrompt = string.Join("\n", negative) };
        if (paramLine.Length == 0) return result;
        var extra = new List<KeyValuePair<string, string>>();
        foreach (Match m in matches)
        {
            string key = m.Groups[1].Value, value = Unquote(m.Groups[2].Value);
            if (!Assign(ref result, key, value)) extra.Add(new(key, value));
        }
        return result with { Extra = extra };
    }

    static bool Assign(ref GenerationParameters p, string key, string value)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (key)
        {
            case "Steps" when int.TryParse(value, NumberStyles.Integer, inv, out int steps): p = p with { Steps = steps }; return true;
            case "Sampler": p = p with { Sampler = value }; return true;
            case "CFG scale" when double.TryParse(value, NumberStyles.Float, inv, out double cfg): p = p with { CfgScale = cfg }; return true;
            case "Seed" when long.TryParse(value, NumberStyles.Integer, inv, out long seed): p = p with { Seed = seed }; return true;
            case "Size" when SizePattern.Match(value) is { Success: true } s:
                p = p with { Width = int.Parse(s.Groups[1].Value, inv), Height = int.Parse(s.Groups[2].Value, inv) }; return true;
            case "Model": p = p with { Model = value }; return true;
            case "Lora" when ParseLoras(value) is { } loras: p = p with { Loras = loras }; return true;
            default: return false;
        }
    }

    static List<LoraReference>? ParseLoras(string value)
    {
        var list = new List<LoraReference>();
        foreach (var part in value.Split(", "))
        {
            int colon = part.LastIndexOf(':');
            if (colon <= 0 || !double.TryParse(part[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double scale)) return null;
            list.Add(new LoraReference(part[..colon], scale));
        }
        return list;
    }

    static string FormatLora(LoraReference l)
    {
        if (l.Name.Contains(", ") || l.Name.Contains('\n') || l.Name.Length == 0)
            throw new ArgumentException($"LoRA name '{l.Name}' cannot be written to infotext: it must be non-empty, without \", \" or line breaks");
        return $"{l.Name}:{Number(l.Scale)}";
    }

    static string CheckKey(string key) =>
        Regex.IsMatch(key, @"^\w[\w \-/]+$") ? key : throw new ArgumentException($"infotext key '{key}' must be letters, digits, spaces, '-' or '/'");

    static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    static string Quote(string value) =>
        value.Contains(',') || value.Contains(':') || value.Contains('\n') ? JsonSerializer.Serialize(value, JsonText) : value;

    static string Unquote(string value)
    {
        if (value.Length < 2 || value[0] != '"' || value[^1] != '"') return value;
        try { return JsonSerializer.Deserialize<string>(value) ?? value; }
        catch (JsonException) { return value; }
    }

    /// <inheritdoc/>
    public bool Equals(GenerationParameters? other) =>
        other is not null && Prompt == other.Prompt && NegativePrompt == other.NegativePrompt && Steps == other.Steps &&
        Sampler == other.Sampler && CfgScale == other.CfgScale && Seed == other.Seed && Width == other.Width &&
        Height == other.Height && Model == other.Model && Loras.SequenceEqual(other.Loras) && Extra.SequenceEqual(other.Extra);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Prompt, NegativePrompt, Steps, Sampler, CfgScale, Seed, Model, Loras.Count);
}
