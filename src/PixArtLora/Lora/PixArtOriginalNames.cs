using System.Text.RegularExpressions;

namespace PixArtLora.Lora;

/// <summary>
/// Linear layers of the original PixArt code (PixArt-alpha / PixArt-sigma repositories) and their diffusers names,
/// as tools/convert_pixart_to_diffusers.py maps the weights. Two original layers are fused there and split in diffusers:
/// self-attention <c>blocks.N.attn.qkv</c> (rows q | k | v) and cross-attention <c>blocks.N.cross_attn.kv_linear</c> (rows k | v).
/// Separators may be '.' or '_' (kohya-style flattened names).
/// </summary>
internal static class PixArtOriginalNames
{
    const string S = "[._]";

    static readonly (Regex Pattern, string[] Targets)[] Map =
    {
        (Rx($"blocks{S}(?<n>\\d+){S}attn{S}qkv"), new[] { "transformer_blocks.{n}.attn1.to_q", "transformer_blocks.{n}.attn1.to_k", "transformer_blocks.{n}.attn1.to_v" }),
        (Rx($"blocks{S}(?<n>\\d+){S}attn{S}proj"), new[] { "transformer_blocks.{n}.attn1.to_out.0" }),
        (Rx($"blocks{S}(?<n>\\d+){S}cross{S}attn{S}q{S}linear"), new[] { "transformer_blocks.{n}.attn2.to_q" }),
        (Rx($"blocks{S}(?<n>\\d+){S}cross{S}attn{S}kv{S}linear"), new[] { "transformer_blocks.{n}.attn2.to_k", "transformer_blocks.{n}.attn2.to_v" }),
        (Rx($"blocks{S}(?<n>\\d+){S}cross{S}attn{S}proj"), new[] { "transformer_blocks.{n}.attn2.to_out.0" }),
        (Rx($"blocks{S}(?<n>\\d+){S}mlp{S}fc1"), new[] { "transformer_blocks.{n}.ff.net.0.proj" }),
        (Rx($"blocks{S}(?<n>\\d+){S}mlp{S}fc2"), new[] { "transformer_blocks.{n}.ff.net.2" }),
        (Rx($"t{S}block{S}1"), new[] { "adaln_single.linear" }),
        (Rx($"t{S}embedder{S}mlp{S}0"), new[] { "adaln_single.emb.timestep_embedder.linear_1" }),
        (Rx($"t{S}embedder{S}mlp{S}2"), new[] { "adaln_single.emb.timestep_embedder.linear_2" }),
        (Rx($"csize{S}embedder{S}mlp{S}0"), new[] { "adaln_single.emb.resolution_embedder.linear_1" }),
        (Rx($"csize{S}embedder{S}mlp{S}2"), new[] { "adaln_single.emb.resolution_embedder.linear_2" }),
        (Rx($"ar{S}embedder{S}mlp{S}0"), new[] { "adaln_single.emb.aspect_ratio_embedder.linear_1" }),
        (Rx($"ar{S}embedder{S}mlp{S}2"), new[] { "adaln_single.emb.aspect_ratio_embedder.linear_2" }),
        (Rx($"y{S}embedder{S}y{S}proj{S}fc1"), new[] { "caption_projection.linear_1" }),
        (Rx($"y{S}embedder{S}y{S}proj{S}fc2"), new[] { "caption_projection.linear_2" }),
        (Rx($"final{S}layer{S}linear"), new[] { "proj_out" }),
    };

    static Regex Rx(string body) => new("^" + body + "$", RegexOptions.CultureInvariant);

    /// <summary>The diffusers module names an original PixArt module name stands for (several when the layer is fused), or null.</summary>
    public static string[]? ToDiffusers(string originalName)
    {
        foreach (var (pattern, targets) in Map)
        {
            var m = pattern.Match(originalName);
            if (!m.Success) continue;
            string n = m.Groups["n"].Success ? m.Groups["n"].Value : "";
            return targets.Select(t => t.Replace("{n}", n)).ToArray();
        }
        return null;
    }
}
