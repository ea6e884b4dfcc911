using System.Text.Json;
using System.Text.Json.Serialization;

namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// The encoder half of a Hugging Face <c>T5Config</c> (config.json of a <c>text_encoder/</c> folder). Only the
/// fields the encoder uses are typed; the rest of the file is kept in <see cref="Extra"/> so that a config
/// read and written back loses nothing. Defaults are those of transformers' <c>T5Config</c>.
/// </summary>
public sealed record T5Config
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 32128;
    [JsonPropertyName("d_model")] public int DModel { get; init; } = 512;
    /// <summary>Size of one attention head; inner_dim = num_heads × d_kv need not equal d_model.</summary>
    [JsonPropertyName("d_kv")] public int DKv { get; init; } = 64;
    [JsonPropertyName("d_ff")] public int DFf { get; init; } = 2048;
    [JsonPropertyName("num_layers")] public int NumLayers { get; init; } = 6;
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = 8;
    [JsonPropertyName("relative_attention_num_buckets")] public int RelativeAttentionNumBuckets { get; init; } = 32;
    [JsonPropertyName("relative_attention_max_distance")] public int RelativeAttentionMaxDistance { get; init; } = 128;
    [JsonPropertyName("layer_norm_epsilon")] public double LayerNormEpsilon { get; init; } = 1e-6;
    /// <summary>"gated-gelu" (T5 v1.1, PixArt's encoder), "relu" (original T5) or "gated-&lt;act&gt;" / "&lt;act&gt;".</summary>
    [JsonPropertyName("feed_forward_proj")] public string FeedForwardProj { get; init; } = "relu";
    /// <summary>When present it wins over what feed_forward_proj implies (transformers applies stored keys last).</summary>
    [JsonPropertyName("dense_act_fn")] public string? DenseActFn { get; init; }
    [JsonPropertyName("is_gated_act")] public bool? IsGatedActStored { get; init; }
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; init; }
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 1;
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; init; }

    /// <summary>Every other field of config.json, kept verbatim.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

    [JsonIgnore] public int InnerDim => NumHeads * DKv;

    /// <summary>True when the feed-forward is gated (wi_0, wi_1, wo) rather than a single wi.</summary>
    [JsonIgnore] public bool IsGatedAct => IsGatedActStored ?? FeedForwardProj.StartsWith("gated-", StringComparison.Ordinal);

    /// <summary>
    /// The activation name, resolved as transformers' T5Config does: the part after "gated-", with
    /// "gated-gelu" meaning <c>gelu_new</c> (the tanh approximation) for backwards compatibility.
    /// </summary>
    [JsonIgnore]
    public string ActivationName => DenseActFn ?? (FeedForwardProj == "gated-gelu" ? "gelu_new" : FeedForwardProj.Split('-')[^1]);

    /// <summary>Google's T5 v1.1 XXL encoder, PixArt-α/Σ's text encoder (about 4.76 B parameters).</summary>
    public static T5Config V11Xxl { get; } = new()
    {
        VocabSize = 32128, DModel = 4096, DKv = 64, DFf = 10240, NumLayers = 24, NumHeads = 64,
        FeedForwardProj = "gated-gelu", DenseActFn = "gelu_new", IsGatedActStored = true,
    };

    public static T5Config FromJson(string json, string source = "config.json")
    {
        T5Config? cfg;
        try { cfg = JsonSerializer.Deserialize<T5Config>(json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not a valid T5 config ({e.Message})"); }
        if (cfg == null) throw new InvalidDataException($"{source}: empty T5 config");
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>Reads <c>config.json</c> from a file or from a <c>text_encoder/</c> folder.</summary>
    public static T5Config Load(string fileOrFolder)
    {
        string path = Directory.Exists(fileOrFolder) ? Path.Combine(fileOrFolder, "config.json") : fileOrFolder;
        if (!File.Exists(path)) throw new FileNotFoundException($"T5 config not found: {path}", path);
        return FromJson(File.ReadAllText(path), path);
    }

    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });

    void Validate(string source)
    {
        void Positive(int v, string field)
        {
            if (v <= 0) throw new InvalidDataException($"{source}: {field} = {v}, expected a positive integer");
        }
        Positive(VocabSize, "vocab_size"); Positive(DModel, "d_model"); Positive(DKv, "d_kv"); Positive(DFf, "d_ff");
        Positive(NumLayers, "num_layers"); Positive(NumHeads, "num_heads");
        Positive(RelativeAttentionNumBuckets, "relative_attention_num_buckets");
        Positive(RelativeAttentionMaxDistance, "relative_attention_max_distance");
        var parts = FeedForwardProj.Split('-');
        if (parts.Length > 2 || (parts.Length == 2 && parts[0] != "gated"))
            throw new InvalidDataException($"{source}: feed_forward_proj = '{FeedForwardProj}', expected '<act>' or 'gated-<act>'");
        if (!T5Activations.IsKnown(ActivationName))
            throw new InvalidDataException($"{source}: activation '{ActivationName}' (from feed_forward_proj '{FeedForwardProj}') is not supported; expected one of {string.Join(", ", T5Activations.Names)}");
    }
}
