using System.Text.Json;
using System.Text.Json.Serialization;
using PixArtLora.IO;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// The configuration of <see cref="PixArtTransformer2DModel"/>, field for field the <c>transformer/config.json</c>
/// that diffusers writes for <c>PixArtTransformer2DModel</c> (v0.31). Nullable fields keep diffusers' meaning of
/// <c>null</c>: see <see cref="ResolvedInterpolationScale"/> and <see cref="ResolvedUseAdditionalConditions"/>.
/// Keys this type does not know (older configs carry <c>use_linear_projection</c>, <c>num_vector_embeds</c>, EMA
/// counters …) are kept in <see cref="Extra"/> and written back unchanged.
/// </summary>
public sealed record PixArtTransformerConfig
{
    [JsonPropertyName("_class_name")] public string ClassName { get; init; } = "PixArtTransformer2DModel";
    [JsonPropertyName("_diffusers_version")] public string DiffusersVersion { get; init; } = "0.31.0";

    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 16;
    [JsonPropertyName("attention_head_dim")] public int AttentionHeadDim { get; init; } = 72;
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    /// <summary>Output channels; <c>null</c> means equal to <see cref="InChannels"/>. PixArt uses 8 (eps + learned variance).</summary>
    [JsonPropertyName("out_channels")] public int? OutChannels { get; init; } = 8;
    [JsonPropertyName("num_layers")] public int NumLayers { get; init; } = 28;
    [JsonPropertyName("dropout")] public double Dropout { get; init; }
    /// <summary>Unused by PixArt (no group norm); kept because diffusers writes it.</summary>
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    [JsonPropertyName("cross_attention_dim")] public int? CrossAttentionDim { get; init; } = 1152;
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; } = true;
    /// <summary>Latent size the model was trained at (image size / 8); sets the position-embedding base size.</summary>
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 128;
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    [JsonPropertyName("activation_fn")] public string ActivationFn { get; init; } = "gelu-approximate";
    [JsonPropertyName("num_embeds_ada_norm")] public int? NumEmbedsAdaNorm { get; init; } = 1000;
    [JsonPropertyName("upcast_attention")] public bool UpcastAttention { get; init; }
    [JsonPropertyName("norm_type")] public string NormType { get; init; } = "ada_norm_single";
    [JsonPropertyName("norm_elementwise_affine")] public bool NormElementwiseAffine { get; init; }
    [JsonPropertyName("norm_eps")] public double NormEps { get; init; } = 1e-6;
    /// <summary>Position-embedding interpolation scale; fractional for Σ-256 (0.5). <c>null</c>: see <see cref="ResolvedInterpolationScale"/>.</summary>
    [JsonPropertyName("interpolation_scale")] public double? InterpolationScale { get; init; }
    /// <summary>α micro-conditions (resolution, aspect ratio). <c>null</c>: see <see cref="ResolvedUseAdditionalConditions"/>.</summary>
    [JsonPropertyName("use_additional_conditions")] public bool? UseAdditionalConditions { get; init; }
    /// <summary>Width of the text-encoder features (4096 for T5-XXL); <c>null</c> means no caption projection.</summary>
    [JsonPropertyName("caption_channels")] public int? CaptionChannels { get; init; } = 4096;
    [JsonPropertyName("attention_type")] public string? AttentionType { get; init; } = "default";

    /// <summary>Keys of config.json this record has no field for, preserved on save.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

    /// <summary>Hidden width of the transformer: heads × head dim (1152 for the released models).</summary>
    [JsonIgnore] public int InnerDim => NumAttentionHeads * AttentionHeadDim;

    [JsonIgnore] public int ResolvedOutChannels => OutChannels ?? InChannels;

    /// <summary>diffusers: <c>interpolation_scale</c> when given, else <c>max(sample_size // 64, 1)</c>.</summary>
    [JsonIgnore] public double ResolvedInterpolationScale => InterpolationScale ?? Math.Max(SampleSize / 64, 1);

    /// <summary>diffusers: <c>use_additional_conditions</c> when given, else <c>sample_size == 128</c>
    /// (which is why the published α-1024-MS config, written before the key existed, still gets micro-conditions).</summary>
    [JsonIgnore] public bool ResolvedUseAdditionalConditions => UseAdditionalConditions ?? SampleSize == 128;

    /// <summary>Width of each micro-condition embedding (diffusers' <c>size_emb_dim = inner_dim // 3</c>).</summary>
    [JsonIgnore] public int SizeEmbeddingDim => InnerDim / 3;

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>Reads a diffusers <c>config.json</c> (or a folder holding one) and validates it.</summary>
    public static PixArtTransformerConfig Load(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"transformer config not found: {file}", file);
        PixArtTransformerConfig? config;
        try { config = JsonSerializer.Deserialize<PixArtTransformerConfig>(File.ReadAllText(file), JsonOptions); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not a valid transformer config ({e.Message})", e); }
        if (config is null) throw new InvalidDataException($"{file}: empty transformer config");
        config.Validate(file);
        return config;
    }

    /// <summary>Parses config.json text (as <see cref="Load"/> does for a file).</summary>
    public static PixArtTransformerConfig Parse(string json, string source = "config.json")
    {
        var config = JsonSerializer.Deserialize<PixArtTransformerConfig>(json, JsonOptions)
                     ?? throw new InvalidDataException($"{source}: empty transformer config");
        config.Validate(source);
        return config;
    }

    /// <summary>The config.json text diffusers would read back to the same model.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Writes <c>config.json</c> atomically (a folder path gets <c>folder/config.json</c>).</summary>
    public void Save(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        AtomicFile.WriteAllText(file, ToJson());
    }

    /// <summary>Throws when the config asks for something PixArtTransformer2DModel does not have.</summary>
    public void Validate(string source = "config.json")
    {
        void Fail(string field, object? found, string expected) =>
            throw new InvalidDataException($"{source}: {field} is {found ?? "null"}, expected {expected}");

        if (ClassName is not ("PixArtTransformer2DModel" or "Transformer2DModel"))
            Fail("_class_name", ClassName, "PixArtTransformer2DModel");
        if (NormType != "ada_norm_single") Fail("norm_type", NormType, "ada_norm_single (the only norm PixArt uses)");
        if (NumEmbedsAdaNorm is null) Fail("num_embeds_ada_norm", null, "an integer with norm_type ada_norm_single");
        if (ActivationFn is not ("gelu-approximate" or "gelu")) Fail("activation_fn", ActivationFn, "gelu-approximate or gelu");
        if ((AttentionType ?? "default") != "default") Fail("attention_type", AttentionType, "default");
        if (NumAttentionHeads <= 0) Fail("num_attention_heads", NumAttentionHeads, "> 0");
        if (AttentionHeadDim <= 0) Fail("attention_head_dim", AttentionHeadDim, "> 0");
        if (InnerDim % 4 != 0) Fail("num_attention_heads × attention_head_dim", InnerDim, "a multiple of 4 (sin-cos position embedding of two axes)");
        if (NumLayers < 0) Fail("num_layers", NumLayers, ">= 0");
        if (PatchSize <= 0) Fail("patch_size", PatchSize, "> 0");
        if (SampleSize < PatchSize) Fail("sample_size", SampleSize, $">= patch_size ({PatchSize})");
        if (InterpolationScale is <= 0) Fail("interpolation_scale", InterpolationScale, "> 0");
        if (ResolvedUseAdditionalConditions && 3 * SizeEmbeddingDim != InnerDim)
            Fail("num_attention_heads × attention_head_dim", InnerDim, "a multiple of 3 when use_additional_conditions is on");
        if (Extra != null)
        {
            // Keys of the pre-0.28 Transformer2DModel configs: accepted only at the values PixArt used.
            if (Extra.TryGetValue("only_cross_attention", out var oca) && oca.ValueKind == JsonValueKind.True)
                Fail("only_cross_attention", true, "false");
            if (Extra.TryGetValue("double_self_attention", out var dsa) && dsa.ValueKind == JsonValueKind.True)
                Fail("double_self_attention", true, "false");
        }
    }
}
