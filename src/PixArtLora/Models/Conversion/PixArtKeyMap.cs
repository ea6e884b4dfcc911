using System.Text.RegularExpressions;

namespace PixArtLora.Models.Conversion;

/// <summary>
/// How one output tensor is made from input tensors: a copy (one source), one equal chunk along dim 0
/// of one source (<c>torch.chunk(W, ChunkCount, dim=0)[ChunkIndex]</c>), or a concatenation of several
/// sources along dim 0 (the reverse of the chunking).
/// </summary>
public sealed record KeyMapping(string Target, IReadOnlyList<string> Sources, int ChunkIndex = 0, int ChunkCount = 1)
{
    public bool IsSplit => ChunkCount > 1;
    public bool IsConcat => Sources.Count > 1;
}

/// <summary>The planned conversion: every output tensor's recipe, and the input keys deliberately left out (with why).</summary>
public sealed record KeyMapPlan(IReadOnlyList<KeyMapping> Mappings, IReadOnlyDictionary<string, string> Dropped);

/// <summary>
/// Key names of the original PixArt checkpoints (PixArt-alpha/PixArt-sigma <c>diffusion/model/nets/PixArtMS.py</c>)
/// against diffusers' <c>PixArtTransformer2DModel</c>, following diffusers'
/// <c>scripts/convert_pixart_sigma_to_diffusers.py</c> and the official <c>tools/convert_pixart_to_diffusers.py</c>:
/// the fused self-attention <c>attn.qkv</c> becomes <c>attn1.to_q/to_k/to_v</c>, the fused cross-attention
/// <c>cross_attn.kv_linear</c> becomes <c>attn2.to_k/to_v</c>, and the embedders move under <c>adaln_single</c>.
/// </summary>
public static class PixArtKeyMap
{
    /// <summary>Original keys with no diffusers counterpart, and why they can be dropped.</summary>
    public static IReadOnlyDictionary<string, string> DroppedOriginalKeys { get; } = new Dictionary<string, string>
    {
        ["pos_embed"] = "fixed 2-D sin-cos table; diffusers recomputes it from sample_size and interpolation_scale",
        ["y_embedder.y_embedding"] = "learned null caption used only for caption dropout in training; inference uses the T5 embedding of \"\"",
    };

    // Original module prefix → diffusers module prefix; each maps its .weight and .bias.
    static readonly (string Original, string Diffusers)[] TopModules =
    {
        ("x_embedder.proj", "pos_embed.proj"),
        ("y_embedder.y_proj.fc1", "caption_projection.linear_1"),
        ("y_embedder.y_proj.fc2", "caption_projection.linear_2"),
        ("t_embedder.mlp.0", "adaln_single.emb.timestep_embedder.linear_1"),
        ("t_embedder.mlp.2", "adaln_single.emb.timestep_embedder.linear_2"),
        ("t_block.1", "adaln_single.linear"),
        ("final_layer.linear", "proj_out"),
    };

    // PixArt-α 1024-MS micro-conditions (image size and aspect ratio embedders).
    static readonly (string Original, string Diffusers)[] MicroConditionModules =
    {
        ("csize_embedder.mlp.0", "adaln_single.emb.resolution_embedder.linear_1"),
        ("csize_embedder.mlp.2", "adaln_single.emb.resolution_embedder.linear_2"),
        ("ar_embedder.mlp.0", "adaln_single.emb.aspect_ratio_embedder.linear_1"),
        ("ar_embedder.mlp.2", "adaln_single.emb.aspect_ratio_embedder.linear_2"),
    };

    static readonly (string Original, string Diffusers)[] BlockModules =
    {
        ("attn.proj", "attn1.to_out.0"),
        ("cross_attn.q_linear", "attn2.to_q"),
        ("cross_attn.proj", "attn2.to_out.0"),
        ("mlp.fc1", "ff.net.0.proj"),
        ("mlp.fc2", "ff.net.2"),
    };

    // Fused original linear layers → the diffusers layers its dim-0 chunks become, in order.
    static readonly (string Original, string[] Diffusers)[] BlockFused =
    {
        ("attn.qkv", new[] { "attn1.to_q", "attn1.to_k", "attn1.to_v" }),
        ("cross_attn.kv_linear", new[] { "attn2.to_k", "attn2.to_v" }),
    };

    static readonly string[] ParamKinds = { "weight", "bias" };
    static readonly Regex BlockKey = new(@"^blocks\.(\d+)\.(.+)$", RegexOptions.Compiled);
    static readonly Regex DiffusersBlockKey = new(@"^transformer_blocks\.(\d+)\.(.+)$", RegexOptions.Compiled);

    /// <summary>Every original key a PixArt model with <paramref name="depth"/> blocks has (micro-condition embedders optional).</summary>
    public static IReadOnlyList<string> OriginalKeys(int depth, bool microConditions)
    {
        var keys = new List<string>();
        foreach (var (o, _) in microConditions ? TopModules.Concat(MicroConditionModules) : TopModules)
            keys.AddRange(ParamKinds.Select(p => $"{o}.{p}"));
        keys.Add("final_layer.scale_shift_table");
        for (int n = 0; n < depth; n++)
        {
            keys.Add($"blocks.{n}.scale_shift_table");
            foreach (var (o, _) in BlockModules) keys.AddRange(ParamKinds.Select(p => $"blocks.{n}.{o}.{p}"));
            foreach (var (o, _) in BlockFused) keys.AddRange(ParamKinds.Select(p => $"blocks.{n}.{o}.{p}"));
        }
        return keys;
    }

    /// <summary>
    /// Plans original → diffusers for the given original keys. Keys with no counterpart are dropped and
    /// reported; unknown keys (qk-norm, KV-compression layers, anything else) and missing keys are errors.
    /// </summary>
    public static KeyMapPlan ToDiffusers(IEnumerable<string> originalKeys, string source)
    {
        var present = originalKeys.ToList();
        var set = present.ToHashSet(StringComparer.Ordinal);
        int depth = BlockCount(present, BlockKey, source);
        bool micro = set.Any(k => k.StartsWith("csize_embedder.", StringComparison.Ordinal) || k.StartsWith("ar_embedder.", StringComparison.Ordinal));
        var expected = OriginalKeys(depth, micro);
        CheckKeySets(set, expected, DroppedOriginalKeys.Keys, source, "original PixArt");

        var mappings = new List<KeyMapping>();
        foreach (var (o, d) in micro ? TopModules.Concat(MicroConditionModules) : TopModules)
            foreach (var p in ParamKinds) mappings.Add(new($"{d}.{p}", new[] { $"{o}.{p}" }));
        mappings.Add(new("scale_shift_table", new[] { "final_layer.scale_shift_table" }));
        for (int n = 0; n < depth; n++)
        {
            mappings.Add(new($"transformer_blocks.{n}.scale_shift_table", new[] { $"blocks.{n}.scale_shift_table" }));
            foreach (var (o, d) in BlockModules)
                foreach (var p in ParamKinds) mappings.Add(new($"transformer_blocks.{n}.{d}.{p}", new[] { $"blocks.{n}.{o}.{p}" }));
            foreach (var (o, parts) in BlockFused)
                foreach (var p in ParamKinds)
                    for (int i = 0; i < parts.Length; i++)
                        mappings.Add(new($"transformer_blocks.{n}.{parts[i]}.{p}", new[] { $"blocks.{n}.{o}.{p}" }, i, parts.Length));
        }
        var dropped = DroppedOriginalKeys.Where(kv => set.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        return new KeyMapPlan(mappings, dropped);
    }

    /// <summary>
    /// Plans diffusers → original names (fusing q/k/v back into <c>attn.qkv</c> and k/v into
    /// <c>cross_attn.kv_linear</c>). <c>pos_embed</c> and <c>y_embedder.y_embedding</c> cannot be restored.
    /// </summary>
    public static KeyMapPlan ToOriginal(IEnumerable<string> diffusersKeys, string source)
    {
        var present = diffusersKeys.ToList();
        var set = present.ToHashSet(StringComparer.Ordinal);
        int depth = BlockCount(present, DiffusersBlockKey, source);
        bool micro = set.Any(k => k.StartsWith("adaln_single.emb.resolution_embedder.", StringComparison.Ordinal)
                                  || k.StartsWith("adaln_single.emb.aspect_ratio_embedder.", StringComparison.Ordinal));
        var forward = ToDiffusers(OriginalKeys(depth, micro), "(expected layout)");
        CheckKeySets(set, forward.Mappings.Select(m => m.Target).ToList(), Array.Empty<string>(), source, "diffusers PixArt transformer");

        var reverse = forward.Mappings
            .GroupBy(m => m.Sources[0])
            .Select(g => new KeyMapping(g.Key, g.OrderBy(m => m.ChunkIndex).Select(m => m.Target).ToList()))
            .ToList();
        return new KeyMapPlan(reverse, new Dictionary<string, string>());
    }

    static int BlockCount(IReadOnlyList<string> keys, Regex pattern, string source)
    {
        var indices = keys.Select(k => pattern.Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).Distinct().OrderBy(i => i).ToList();
        for (int i = 0; i < indices.Count; i++)
            if (indices[i] != i) throw new ConversionException($"{source}: transformer block {i} is missing (blocks present: {string.Join(", ", indices)})");
        return indices.Count;
    }

    static void CheckKeySets(HashSet<string> present, IReadOnlyList<string> expected, IEnumerable<string> droppable, string source, string layout)
    {
        var expectedSet = expected.ToHashSet(StringComparer.Ordinal);
        var unknown = present.Where(k => !expectedSet.Contains(k) && !droppable.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
            throw new ConversionException($"{source}: {unknown.Count} key(s) not in the {layout} layout: {Sample(unknown)}. {Explain(unknown)}");
        var missing = expected.Where(k => !present.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new ConversionException($"{source}: {missing.Count} key(s) of the {layout} layout are missing: {Sample(missing)}");
    }

    static string Explain(List<string> unknown)
    {
        if (unknown.Any(k => k.Contains(".attn.sr.") || k.Contains(".attn.norm.")))
            return "KV-compression layers (attn.sr / attn.norm) have no diffusers PixArt counterpart; such models cannot be converted.";
        if (unknown.Any(k => k.Contains("q_norm") || k.Contains("k_norm")))
            return "qk-norm layers are not part of any released PixArt model and are not converted.";
        return "Is this a PixArt transformer checkpoint?";
    }

    static string Sample(List<string> keys) => string.Join(", ", keys.Take(8)) + (keys.Count > 8 ? $", ... ({keys.Count - 8} more)" : "");
}
