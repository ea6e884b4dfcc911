using System.Globalization;
using System.Text.RegularExpressions;

namespace PixArtLora.Lora;

/// <summary>
/// Which <c>Linear</c> modules of a model get an adapter: name patterns matched the way PEFT's
/// <c>target_modules</c> matches them (a pattern hits a module whose full name equals it or ends with
/// <c>"." + pattern</c>; a pattern starting with <c>re:</c> is a regular expression over the full name),
/// optionally restricted to some transformer blocks.
/// </summary>
public sealed record LoraTargets
{
    /// <summary>The mission's default: the four attention projections of self- (<c>attn1</c>) and cross-attention (<c>attn2</c>).</summary>
    public static LoraTargets Attention { get; } = new(new[] { "to_q", "to_k", "to_v", "to_out.0" }, "attention");

    /// <summary>Attention projections plus both feed-forward layers.</summary>
    public static LoraTargets AttentionAndFeedForward { get; } =
        new(new[] { "to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2" }, "attention+ff");

    /// <summary>
    /// The list of the official PixArt LoRA script (train_pixart_lora_hf.py): attention, feed-forward, <c>proj_in</c>/<c>proj_out</c>,
    /// caption projection and timestep <c>linear_1</c>/<c>linear_2</c>, <c>adaln_single.linear</c>. Its <c>proj</c> also hits the patch
    /// embedding's Conv2d there; only <c>Linear</c> modules are adapted here, so that one is left alone.
    /// </summary>
    public static LoraTargets AllLinear { get; } = new(new[]
    {
        "to_k", "to_q", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "proj", "linear", "linear_1", "linear_2",
    }, "all-linear");

    /// <summary>The module name patterns.</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>Block indices (<c>transformer_blocks.N</c>) to adapt; null = every block and the modules outside blocks.
    /// When set, only modules inside the chosen blocks are adapted (as PEFT's <c>layers_to_transform</c> does).</summary>
    public IReadOnlySet<int>? Blocks { get; init; }

    /// <summary>Preset name when built from one, for metadata and messages.</summary>
    public string? PresetName { get; }

    static readonly Regex BlockIndex = new(@"(?:^|\.)transformer_blocks\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>Targets from explicit patterns.</summary>
    public LoraTargets(IEnumerable<string> patterns) : this(patterns, null) { }

    LoraTargets(IEnumerable<string> patterns, string? preset)
    {
        Patterns = patterns.Select(p => p.Trim()).Where(p => p.Length > 0).ToList();
        if (Patterns.Count == 0) throw new ArgumentException("LoRA targets: no module pattern given");
        PresetName = preset;
    }

    /// <summary>
    /// Parses a preset name (<c>attention</c>, <c>attention+ff</c>, <c>all-linear</c>) or a comma-separated pattern list
    /// (<c>to_q,to_v,attn2.to_out.0</c>).
    /// </summary>
    public static LoraTargets Parse(string spec)
    {
        string s = spec.Trim();
        return s.ToLowerInvariant() switch
        {
            "attention" or "attn" => Attention,
            "attention+ff" or "attention-ff" or "attn+ff" => AttentionAndFeedForward,
            "all-linear" or "all_linear" or "all" => AllLinear,
            _ => new LoraTargets(s.Split(',')),
        };
    }

    /// <summary>Parses a block selection such as <c>10-27</c> or <c>0,2,5-7</c>.</summary>
    public static IReadOnlySet<int> ParseBlocks(string spec)
    {
        var set = new SortedSet<int>();
        foreach (var part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-', StringSplitOptions.TrimEntries);
            if (range.Length is < 1 or > 2 || !range.All(r => int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                throw new ArgumentException($"block selection '{spec}': '{part}' is not a block number or a range like 10-27");
            int lo = int.Parse(range[0], CultureInfo.InvariantCulture), hi = int.Parse(range[^1], CultureInfo.InvariantCulture);
            if (hi < lo) throw new ArgumentException($"block selection '{spec}': range '{part}' ends before it starts");
            for (int i = lo; i <= hi; i++) set.Add(i);
        }
        if (set.Count == 0) throw new ArgumentException($"block selection '{spec}' selects no block");
        return set;
    }

    /// <summary>Whether the module with full dotted name <paramref name="moduleName"/> is targeted.</summary>
    public bool Matches(string moduleName)
    {
        if (Blocks != null)
        {
            var m = BlockIndex.Match(moduleName);
            if (!m.Success || !Blocks.Contains(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))) return false;
        }
        foreach (var p in Patterns)
        {
            if (p.StartsWith("re:", StringComparison.Ordinal))
            {
                if (Regex.IsMatch(moduleName, "^(?:" + p[3..] + ")$", RegexOptions.CultureInvariant)) return true;
            }
            else if (moduleName == p || moduleName.EndsWith("." + p, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>A short description for metadata and logs, e.g. <c>attention</c> or <c>to_q,to_v @ blocks 10-27</c>.</summary>
    public override string ToString()
    {
        string what = PresetName ?? string.Join(",", Patterns);
        return Blocks == null ? what : $"{what} @ blocks {DescribeBlocks(Blocks)}";
    }

    static string DescribeBlocks(IReadOnlySet<int> blocks)
    {
        var parts = new List<string>();
        var sorted = blocks.OrderBy(b => b).ToList();
        for (int i = 0; i < sorted.Count;)
        {
            int j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? $"{sorted[i]}" : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(",", parts);
    }

    public bool Equals(LoraTargets? other) =>
        other != null && Patterns.SequenceEqual(other.Patterns) &&
        (Blocks == null ? other.Blocks == null : other.Blocks != null && Blocks.SetEquals(other.Blocks));

    public override int GetHashCode() => string.Join(",", Patterns).GetHashCode();
}
