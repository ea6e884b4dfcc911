using System.Text.Json;
using System.Text.Json.Serialization;
using PixArtLora.IO;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> config (<c>vae/config.json</c>), field for field, with diffusers' defaults.
/// Both PixArt VAEs use it: SD <c>sd-vae-ft-ema</c> for α (scaling 0.18215) and the SDXL VAE for Σ (0.13025).
/// </summary>
public sealed record AutoencoderKLConfig
{
    public const string ClassName = "AutoencoderKL";
    public const string DownBlockType = "DownEncoderBlock2D";
    public const string UpBlockType = "UpDecoderBlock2D";

    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    [JsonPropertyName("down_block_types")] public string[] DownBlockTypes { get; init; } = { DownBlockType };
    [JsonPropertyName("up_block_types")] public string[] UpBlockTypes { get; init; } = { UpBlockType };
    [JsonPropertyName("block_out_channels")] public int[] BlockOutChannels { get; init; } = { 64 };
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 1;
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;

    /// <summary>Image size the VAE was trained at; diffusers also uses it as the tile size of tiled encode/decode.
    /// config.json may hold an int or a [height, width] list; like diffusers we use the first entry.</summary>
    [JsonPropertyName("sample_size"), JsonConverter(typeof(IntOrListConverter))]
    public int[] SampleSize { get; init; } = { 32 };

    /// <summary>Latents are multiplied by this before the diffusion model sees them and divided by it before
    /// <see cref="AutoencoderKL.Decode"/>. The VAE itself never applies it; the pipeline and trainer do.</summary>
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.18215;
    [JsonPropertyName("shift_factor")] public double? ShiftFactor { get; init; }
    [JsonPropertyName("latents_mean")] public double[]? LatentsMean { get; init; }
    [JsonPropertyName("latents_std")] public double[]? LatentsStd { get; init; }

    /// <summary>True when the VAE must not run in float16 (the SDXL VAE overflows there); see <see cref="AutoencoderKL"/>.</summary>
    [JsonPropertyName("force_upcast")] public bool ForceUpcast { get; init; } = true;
    [JsonPropertyName("use_quant_conv")] public bool UseQuantConv { get; init; } = true;
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; } = true;
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;

    /// <summary>Pixels per latent along each side: 2^(number of blocks - 1), 8 for both PixArt VAEs.</summary>
    [JsonIgnore] public int SpatialScaleFactor => 1 << (BlockOutChannels.Length - 1);

    /// <summary>The first entry of <see cref="SampleSize"/>.</summary>
    [JsonIgnore] public int SampleSizePixels => SampleSize[0];

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, ReadCommentHandling = JsonCommentHandling.Skip };

    /// <summary>Reads <paramref name="path"/> (a config.json, or a folder holding one) and checks it.</summary>
    public static AutoencoderKLConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"VAE config not found: {path}", path);
        AutoencoderKLConfig? config;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.TryGetProperty("_class_name", out var cls) && cls.GetString() != ClassName)
                throw new InvalidDataException($"{path}: _class_name is '{cls.GetString()}', expected '{ClassName}'");
            config = doc.RootElement.Deserialize<AutoencoderKLConfig>(Json);
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid AutoencoderKL config ({e.Message})", e); }
        if (config == null) throw new InvalidDataException($"{path}: empty config");
        config.Validate(path);
        return config;
    }

    /// <summary>Parses config JSON text (as written by diffusers or <see cref="ToJson"/>) and checks it.</summary>
    public static AutoencoderKLConfig Parse(string json, string source = "config")
    {
        var config = JsonSerializer.Deserialize<AutoencoderKLConfig>(json, Json)
                     ?? throw new InvalidDataException($"{source}: empty config");
        config.Validate(source);
        return config;
    }

    /// <summary>The config as diffusers writes it, with <c>_class_name</c>.</summary>
    public string ToJson()
    {
        var node = JsonSerializer.SerializeToNode(this, Json)!.AsObject();
        node.Insert(0, "_class_name", ClassName);
        return node.ToJsonString(Json);
    }

    /// <summary>Writes config.json atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>Throws <see cref="InvalidDataException"/> naming the field when the config describes a model we cannot build.</summary>
    public void Validate(string source = "config")
    {
        void Fail(string field, string found, string expected) =>
            throw new InvalidDataException($"{source}: {field} is {found}, expected {expected}");

        int n = BlockOutChannels?.Length ?? 0;
        if (n == 0) Fail("block_out_channels", "empty", "at least one entry");
        if (DownBlockTypes == null || DownBlockTypes.Length != n)
            Fail("down_block_types", $"{DownBlockTypes?.Length ?? 0} entries", $"{n} (one per block_out_channels entry)");
        if (UpBlockTypes == null || UpBlockTypes.Length != n)
            Fail("up_block_types", $"{UpBlockTypes?.Length ?? 0} entries", $"{n} (one per block_out_channels entry)");
        for (int i = 0; i < n; i++)
        {
            if (DownBlockTypes![i] != DownBlockType) Fail($"down_block_types[{i}]", $"'{DownBlockTypes[i]}'", $"'{DownBlockType}'");
            if (UpBlockTypes![i] != UpBlockType) Fail($"up_block_types[{i}]", $"'{UpBlockTypes[i]}'", $"'{UpBlockType}'");
            if (BlockOutChannels![i] <= 0 || BlockOutChannels[i] % NormNumGroups != 0)
                Fail($"block_out_channels[{i}]", BlockOutChannels[i].ToString(), $"a positive multiple of norm_num_groups ({NormNumGroups})");
        }
        if (NormNumGroups <= 0) Fail("norm_num_groups", NormNumGroups.ToString(), "positive");
        if (LayersPerBlock <= 0) Fail("layers_per_block", LayersPerBlock.ToString(), "positive");
        if (InChannels <= 0) Fail("in_channels", InChannels.ToString(), "positive");
        if (OutChannels <= 0) Fail("out_channels", OutChannels.ToString(), "positive");
        if (LatentChannels <= 0) Fail("latent_channels", LatentChannels.ToString(), "positive");
        if (SampleSize == null || SampleSize.Length == 0 || SampleSize[0] <= 0) Fail("sample_size", "missing or not positive", "a positive int");
        if (!VaeActivation.IsKnown(ActFn)) Fail("act_fn", $"'{ActFn}'", VaeActivation.KnownNames);
    }

    /// <summary>sample_size is an int in most configs and a [height, width] list in some.</summary>
    sealed class IntOrListConverter : JsonConverter<int[]>
    {
        public override int[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Number) return new[] { reader.GetInt32() };
            return JsonSerializer.Deserialize<int[]>(ref reader) ?? throw new JsonException("sample_size: null");
        }

        public override void Write(Utf8JsonWriter writer, int[] value, JsonSerializerOptions options)
        {
            if (value.Length == 1) writer.WriteNumberValue(value[0]);
            else JsonSerializer.Serialize(writer, value);
        }
    }
}
