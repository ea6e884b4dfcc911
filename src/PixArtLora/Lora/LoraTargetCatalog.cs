using PixArtLora.IO;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// The Linear layers an adapter can land on, by full dotted module name, with their [out, in] shapes: taken from a
/// live module tree or from a checkpoint's keys (every 2-D <c>*.weight</c>), so that files can be matched, checked
/// and merged without building the model.
/// </summary>
public sealed class LoraTargetCatalog
{
    readonly Dictionary<string, (long Out, long In)> _linears;
    readonly Lazy<Dictionary<string, string>> _byUnderscoreName;

    /// <summary>What the model is, for error messages ("PixArtTransformer2DModel (28 blocks, width 1152) from …").</summary>
    public string Description { get; }

    public IReadOnlyDictionary<string, (long Out, long In)> Linears => _linears;

    public LoraTargetCatalog(IEnumerable<KeyValuePair<string, (long Out, long In)>> linears, string description)
    {
        _linears = new Dictionary<string, (long, long)>(linears, StringComparer.Ordinal);
        Description = description;
        // Kohya/OneTrainer write module names with '_' for '.'; build the reverse map once, only if needed.
        _byUnderscoreName = new(() =>
        {
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var name in _linears.Keys) map.TryAdd(name.Replace('.', '_'), name);
            return map;
        });
    }

    /// <summary>Every <see cref="Linear"/> in <paramref name="model"/>, skipping the adapters' own A/B layers.</summary>
    public static LoraTargetCatalog FromModule(nn.Module model, string? description = null)
    {
        var linears = new List<KeyValuePair<string, (long, long)>>();
        foreach (var (name, module) in model.named_modules())
            if (module is Linear lin && !IsAdapterInternal(name))
                linears.Add(new(name, (lin.out_features, lin.in_features)));
        return new LoraTargetCatalog(linears, description ?? Describe(model.GetType().Name, linears));
    }

    /// <summary>Every 2-D <c>name.weight</c> tensor of a checkpoint, read from its header only.</summary>
    public static LoraTargetCatalog FromCheckpoint(SafetensorsCheckpoint checkpoint, string? description = null)
    {
        var linears = new List<KeyValuePair<string, (long, long)>>();
        foreach (var key in checkpoint.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            if (!key.EndsWith(".weight", StringComparison.Ordinal)) continue;
            var shape = checkpoint.Entry(key).Shape;
            if (shape.Length == 2) linears.Add(new(key[..^".weight".Length], (shape[0], shape[1])));
        }
        return new LoraTargetCatalog(linears, description ?? Describe("checkpoint " + checkpoint.Source, linears));
    }

    /// <summary>Names under an adapter (<c>…lora_A.default</c>) are never targets themselves.</summary>
    internal static bool IsAdapterInternal(string name) =>
        name.Split('.').Any(part => part is "lora_A" or "lora_B" or "lora_dropout");

    public bool Contains(string name) => _linears.ContainsKey(name);

    public bool TryGetShape(string name, out (long Out, long In) shape) => _linears.TryGetValue(name, out shape);

    /// <summary>The module whose name, with '.' written as '_', is <paramref name="underscoreName"/>.</summary>
    public bool TryResolveUnderscoreName(string underscoreName, out string name) =>
        _byUnderscoreName.Value.TryGetValue(underscoreName, out name!);

    /// <summary>
    /// A hint of the naming the model expects: the first block's layers in full, then the other distinct names
    /// (e.g. <c>transformer_blocks.0.attn1.to_q, …, adaln_single.linear, proj_out</c>).
    /// </summary>
    public string ExampleNames(int count = 12) => DescribeNames(_linears.Keys, count);

    /// <summary>Names with their block index folded: each distinct layer once, block 0 standing for every block.</summary>
    public static string DescribeNames(IEnumerable<string> names, int count = 12)
    {
        var distinct = names.Select(n => System.Text.RegularExpressions.Regex.Replace(n, @"(^|\.)transformer_blocks\.\d+\.", "$1transformer_blocks.0."))
            .Distinct().OrderBy(n => n.StartsWith("transformer_blocks.") ? 0 : 1).ThenBy(n => n, StringComparer.Ordinal).ToList();
        if (distinct.Count == 0) return "(no Linear layers)";
        return string.Join(", ", distinct.Take(count)) + (distinct.Count > count ? $", … ({distinct.Count - count} more)" : "");
    }

    static string Describe(string what, List<KeyValuePair<string, (long Out, long In)>> linears)
    {
        int blocks = linears.Select(l => BlockOf(l.Key)).Where(b => b >= 0).Distinct().Count();
        var q = linears.FirstOrDefault(l => l.Key.EndsWith("attn1.to_q", StringComparison.Ordinal));
        string width = q.Key != null ? $", width {q.Value.In}" : "";
        return $"{what} ({linears.Count} Linear layers, {blocks} blocks{width})";
    }

    static int BlockOf(string name)
    {
        var m = System.Text.RegularExpressions.Regex.Match(name, @"(?:^|\.)transformer_blocks\.(\d+)\.");
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
    }
}
