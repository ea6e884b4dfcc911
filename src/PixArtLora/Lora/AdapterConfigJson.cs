using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PixArtLora.Lora;

/// <summary>
/// The parts of PEFT's <c>adapter_config.json</c> that decide the update's scale: <c>r</c>, <c>lora_alpha</c>, <c>use_rslora</c>,
/// and the per-module <c>alpha_pattern</c> (a key matches a module whose name ends with it, as PEFT matches it).
/// </summary>
internal sealed record AdapterConfigJson(string Path, double? LoraAlpha, int? R, bool UseRsLora, IReadOnlyDictionary<string, double> AlphaPattern,
    IReadOnlyList<string> TargetModules, string? BaseModel)
{
    public static AdapterConfigJson Read(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new LoraFormatException($"{path}: not valid JSON ({e.Message})"); }
        if (root is not JsonObject obj) throw new LoraFormatException($"{path}: expected a JSON object");

        double? alpha = Number(obj, "lora_alpha", path) ?? Number(obj, "alpha", path);
        double? r = Number(obj, "r", path);
        bool rs = obj["use_rslora"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
        if (obj["use_dora"] is JsonValue d && d.TryGetValue<bool>(out var dora) && dora)
            throw new LoraFormatException($"{path}: use_dora is true; DoRA adapters are not plain LoRA and are not supported");
        var pattern = new Dictionary<string, double>(StringComparer.Ordinal);
        if (obj["alpha_pattern"] is JsonObject ap)
            foreach (var (k, val) in ap)
                pattern[k] = val is JsonValue jv && jv.TryGetValue<double>(out var x)
                    ? x : throw new LoraFormatException($"{path}: alpha_pattern.{k} is not a number");
        var targets = obj["target_modules"] switch
        {
            JsonArray arr => arr.Select(t => t?.GetValue<string>() ?? "").ToList(),
            JsonValue s when s.TryGetValue<string>(out var str) => new List<string> { str },
            _ => new List<string>(),
        };
        string? baseModel = obj["base_model_name_or_path"] is JsonValue bm && bm.TryGetValue<string>(out var bms) ? bms : null;
        return new AdapterConfigJson(path, alpha, r is null ? null : (int)r.Value, rs, pattern, targets, baseModel);
    }

    static double? Number(JsonObject obj, string name, string path) => obj[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<double>(out var x) => x,
        var other => throw new LoraFormatException($"{path}: {name} is {other.ToJsonString()}, expected a number"),
    };

    /// <summary>alpha for one module: the longest matching alpha_pattern key, else lora_alpha.</summary>
    public double? AlphaFor(string moduleName)
    {
        foreach (var (key, value) in AlphaPattern.OrderByDescending(p => p.Key.Length))
            if (Regex.IsMatch(moduleName, "(^|.*\\.)" + key + "$", RegexOptions.CultureInvariant)) return value;
        return LoraAlpha;
    }
}
