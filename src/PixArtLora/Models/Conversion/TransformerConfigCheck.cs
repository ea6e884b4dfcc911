using System.Text.Json.Nodes;

namespace PixArtLora.Models.Conversion;

/// <summary>
/// Checks a diffusers transformer config.json against the converted weights, so that picking the wrong
/// variant fails at conversion time with the field and both values named, not later at load time.
/// </summary>
internal static class TransformerConfigCheck
{
    /// <summary>Returns a copy of <paramref name="config"/> (with <c>_class_name</c> filled in when absent) after checking it.</summary>
    public static JsonObject Validate(JsonObject config, IReadOnlyDictionary<string, long[]> diffusersShapes, string source)
    {
        var c = (JsonObject)config.DeepClone();
        c["_class_name"] ??= "PixArtTransformer2DModel";

        long[] Shape(string key) => diffusersShapes[key];
        int layers = diffusersShapes.Keys.Count(k => k.StartsWith("transformer_blocks.", StringComparison.Ordinal) && k.EndsWith(".scale_shift_table", StringComparison.Ordinal));
        var patch = Shape("pos_embed.proj.weight");
        long inner = patch[0];
        bool micro = diffusersShapes.ContainsKey("adaln_single.emb.resolution_embedder.linear_1.weight");

        Expect(c, "num_layers", layers, source, "transformer blocks");
        long heads = Int(c, "num_attention_heads"), headDim = Int(c, "attention_head_dim");
        if (heads * headDim != inner)
            throw new ConversionException($"config.json: num_attention_heads {heads} x attention_head_dim {headDim} = {heads * headDim}, " +
                                          $"but {source} has hidden size {inner} (pos_embed.proj.weight [{string.Join(", ", patch)}])");
        Expect(c, "in_channels", patch[1], source, "input channels");
        Expect(c, "patch_size", patch[2], source, "patch size");
        long outFeatures = Shape("proj_out.weight")[0];
        long patchArea = patch[2] * patch[3];
        Expect(c, "out_channels", outFeatures / patchArea, source, "output channels");
        Expect(c, "caption_channels", Shape("caption_projection.linear_1.weight")[1], source, "caption channels");
        if (c["cross_attention_dim"] != null)
            Expect(c, "cross_attention_dim", Shape("transformer_blocks.0.attn2.to_k.weight")[1], source, "cross-attention input size");

        // diffusers enables the micro-conditions when the field is null and sample_size == 128.
        bool configMicro = c["use_additional_conditions"]?.GetValue<bool>() ?? (c["sample_size"] is JsonNode s && Number(s, "sample_size") == 128);
        if (configMicro != micro)
            throw new ConversionException($"config.json: use_additional_conditions is effectively {configMicro.ToString().ToLowerInvariant()}, but {source} " +
                                          (micro ? "has the resolution/aspect-ratio embedders (PixArt-α 1024-MS)" : "has no resolution/aspect-ratio embedders"));
        return c;
    }

    static void Expect(JsonObject c, string field, long actual, string source, string what)
    {
        long configured = Int(c, field);
        if (configured != actual)
            throw new ConversionException($"config.json: {field} is {configured}, but {source} has {actual} {what}");
    }

    static long Int(JsonObject c, string field)
    {
        var node = c[field] ?? throw new ConversionException($"config.json: field '{field}' is missing");
        return (long)Number(node, field);
    }

    // Parsed from the JSON text so that parsed and programmatically built configs behave alike.
    static double Number(JsonNode node, string field) =>
        double.TryParse(node.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw new ConversionException($"config.json: field '{field}' is {node.ToJsonString()}, expected a number");
}
