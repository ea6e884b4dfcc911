using PixArtLora.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

#pragma warning disable IDE1006 // fields carry the Hugging Face names so that state_dict() gives the published keys

/// <summary>The encoder stack (transformers' <c>T5Stack</c>, encoder side): <c>block.N</c> then <c>final_layer_norm</c>.</summary>
public sealed class T5Stack : nn.Module
{
    readonly ModuleList<T5Block> block;
    readonly T5LayerNorm final_layer_norm;

    public T5Stack(T5Config config, Device device, ScalarType dtype, ScalarType woDtype) : base(nameof(T5Stack))
    {
        block = new ModuleList<T5Block>();
        for (int i = 0; i < config.NumLayers; i++)
            block.Add(new T5Block(config, hasRelativeAttentionBias: i == 0, device, dtype, woDtype));
        final_layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    public IReadOnlyList<T5Block> Blocks => block.ToList();

    /// <summary>
    /// Runs the blocks on token embeddings. The relative-position bias is computed once by block 0 and the
    /// additive mask (dtype minimum at padded keys) added to it; every block then reuses that sum.
    /// <paramref name="hiddenStates"/>, when given, collects transformers' output_hidden_states:
    /// the embeddings, the output of each block but the last, then the final normed output (owned by the caller,
    /// outside any dispose scope).
    /// </summary>
    public Tensor forward(Tensor inputsEmbeds, Tensor attentionMask, IList<Tensor>? hiddenStates = null)
    {
        using var scope = NewDisposeScope();
        long length = inputsEmbeds.shape[1];
        var dtype = inputsEmbeds.dtype;
        var extendedMask = (1.0 - attentionMask.unsqueeze(1).unsqueeze(1).to(dtype)) * T5EncoderModel.MinValueOf(dtype);
        var positionBias = block[0].SelfAttentionLayer.Attention.ComputeBias(length, length) + extendedMask;

        var h = inputsEmbeds;
        for (int i = 0; i < block.Count; i++)
        {
            if (hiddenStates != null) hiddenStates.Add(h.detach().clone().DetachFromDisposeScope());
            h = block[i].forward(h, positionBias);
        }
        h = final_layer_norm.forward(h);
        // transformers' tuple has no raw output of the last block: the final normed output stands in its place.
        if (hiddenStates != null) hiddenStates.Add(h.detach().clone().DetachFromDisposeScope());
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The T5 encoder PixArt conditions on (transformers' <c>T5EncoderModel</c>): <c>shared</c> token embeddings
/// (no scaling), <c>encoder</c> blocks, final RMS norm. Parameter names are Hugging Face's, so a
/// <c>text_encoder/</c> folder loads without renaming. Inference only: parameters never require grad.
/// </summary>
public sealed class T5EncoderModel : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly T5Embedding shared;
    readonly T5Stack encoder;

    /// <summary>The configuration the module was built from.</summary>
    public T5Config Config { get; }
    public Device Device { get; }
    /// <summary>Dtype of the weights and of the computation (wo may be float32 beside float16, see <see cref="Create"/>).</summary>
    public ScalarType DType { get; }

    T5EncoderModel(T5Config config, Device device, ScalarType dtype) : base(nameof(T5EncoderModel))
    {
        Config = config; Device = device; DType = dtype;
        // transformers keeps "wo" in float32 when a T5 is loaded in float16 (_keep_in_fp32_modules): the
        // gated feed-forward overflows float16 otherwise. bfloat16 has float32's range and is left as is.
        var woDtype = dtype == ScalarType.Float16 ? ScalarType.Float32 : dtype;
        shared = T5Init.Embedding(config.VocabSize, config.DModel, device, dtype);
        encoder = new T5Stack(config, device, dtype, woDtype);
        RegisterComponents();
    }

    /// <summary>
    /// Builds the module with UNINITIALISED parameters on <paramref name="device"/> (memory is reserved,
    /// not written), for <see cref="LoadWeights"/> to fill in place: loading never holds two copies.
    /// </summary>
    public static T5EncoderModel Create(T5Config config, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64)) throw new ArgumentException($"T5 dtype must be float32, bfloat16, float16 or float64, got {dtype}");
        return new T5EncoderModel(config, device ?? CPU, dtype);
    }

    /// <summary>
    /// Loads a <c>text_encoder/</c> folder as published (config.json plus <c>model.safetensors</c> or sharded
    /// <c>model-0000N-of-0000M.safetensors</c> with <c>model.safetensors.index.json</c>), or a single
    /// .safetensors file with a config.json beside it. <paramref name="dtype"/> defaults to the dtype stored
    /// in the checkpoint, which reads straight into the parameters; another dtype converts one tensor at a time.
    /// </summary>
    public static T5EncoderModel Load(string path, Device? device = null, ScalarType? dtype = null)
    {
        string folder = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        string configPath = Path.Combine(folder, "config.json");
        var config = T5Config.Load(configPath);
        using var checkpoint = Directory.Exists(path) ? SafetensorsCheckpoint.Open(path, "model") : SafetensorsCheckpoint.Open(path);
        var stored = checkpoint.Contains("shared.weight") ? checkpoint.Entry("shared.weight").ScalarType
            : checkpoint.Contains(EmbedTokensKey) ? checkpoint.Entry(EmbedTokensKey).ScalarType : ScalarType.Float32;
        var model = Create(config, device, dtype ?? stored);
        try
        {
            model.LoadWeights(checkpoint, configPath);
            return model;
        }
        catch { model.Dispose(); throw; }
    }

    const string EmbedTokensKey = "encoder.embed_tokens.weight";

    /// <summary>
    /// Fills the parameters from <paramref name="checkpoint"/>. Every key and shape is checked against the
    /// module (hence against config.json) before any data is read. Files written by <c>save_pretrained</c> hold
    /// only <c>shared.weight</c>; older ones also hold the tied copy <c>encoder.embed_tokens.weight</c>,
    /// which is accepted in its place and otherwise ignored.
    /// </summary>
    public void LoadWeights(SafetensorsCheckpoint checkpoint, string? configSource = null)
    {
        var aliases = new Dictionary<string, string> { ["shared.weight"] = EmbedTokensKey };
        var problems = new List<string>();
        foreach (var (key, target) in state_dict())
        {
            string src = checkpoint.Contains(key) ? key : checkpoint.Contains(aliases.GetValueOrDefault(key, "")) ? aliases[key] : "";
            if (src == "") { problems.Add($"{key}: missing from {checkpoint.Source}"); continue; }
            var entry = checkpoint.Entry(src);
            if (!entry.Shape.SequenceEqual(target.shape))
                problems.Add($"{src}: shape [{string.Join(", ", entry.Shape)}] in {checkpoint.FileOf(src).Path}, but " +
                             $"{configSource ?? "the config"} implies [{string.Join(", ", target.shape)}] " +
                             $"(d_model {Config.DModel}, num_heads {Config.NumHeads} × d_kv {Config.DKv}, d_ff {Config.DFf}, vocab_size {Config.VocabSize})");
        }
        if (problems.Count > 0)
            throw new SafetensorsFormatException($"T5 encoder checkpoint does not match its config: {string.Join("; ", problems.Take(10))}" +
                                                 (problems.Count > 10 ? $" … and {problems.Count - 10} more" : ""));
        checkpoint.LoadInto(this, strict: true, aliases);
    }

    /// <summary>The embedding matrix <c>shared.weight</c> [vocab_size, d_model].</summary>
    public Tensor SharedWeight => shared.Weight;
    public T5Stack Encoder => encoder;

    /// <summary>
    /// last_hidden_state [B, L, d_model] for token ids [B, L] and an attention mask [B, L] (1 = token, 0 = padding;
    /// null = all tokens). Padded positions still get values: the mask only hides padded keys.
    /// </summary>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask) => Forward(inputIds, attentionMask, null);

    /// <summary>As <see cref="forward"/>, also collecting transformers' output_hidden_states when a list is given.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, IList<Tensor>? hiddenStates)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = inputIds.to(int64, Device);
        var mask = attentionMask?.to(Device) ?? ones_like(ids);
        var embeds = shared.forward(ids);
        return encoder.forward(embeds, mask, hiddenStates).MoveToOuterDisposeScope();
    }

    /// <summary>torch.finfo(dtype).min: the additive mask value transformers uses for padded keys.</summary>
    internal static double MinValueOf(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => float.MinValue,
        ScalarType.Float64 => double.MinValue,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float16 => -65504.0,
        _ => throw new ArgumentException($"no T5 mask value for dtype {dtype}"),
    };
}
