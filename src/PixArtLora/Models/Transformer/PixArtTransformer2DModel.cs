using PixArtLora.IO;
using PixArtLora.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// The PixArt-α / PixArt-Σ denoiser: diffusers' <c>PixArtTransformer2DModel</c> (v0.31,
/// models/transformers/pixart_transformer_2d.py). Module fields carry diffusers' names, so <c>state_dict()</c> has exactly
/// the keys of the published <c>transformer/diffusion_pytorch_model.safetensors</c>.
/// </summary>
/// <remarks>
/// Dtypes: parameters are created in the dtype given to the constructor (bf16 for frozen weights is fine); inputs of
/// any float dtype are cast where they enter a weight, and the output has the dtype of the latent passed in.
/// Build with <c>device: torch.META</c> to get names, shapes and counts of a full-size model without allocating it.
/// </remarks>
public sealed class PixArtTransformer2DModel : nn.Module
{
#pragma warning disable IDE1006 // diffusers key names
    public readonly PatchEmbed pos_embed;
    public readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    public readonly LayerNorm norm_out;
    public Parameter scale_shift_table;
    public nn.Module<Tensor, Tensor> proj_out;
    public readonly AdaLayerNormSingle adaln_single;
    public readonly PixArtAlphaTextProjection? caption_projection;
#pragma warning restore IDE1006

    /// <summary>The configuration this model was built from (its config.json).</summary>
    public PixArtTransformerConfig Config { get; }

    /// <summary>Recompute each block's activations in backward instead of storing them (applies in training mode).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Builds a randomly initialised model (diffusers' layer shapes; PyTorch default init).</summary>
    public PixArtTransformer2DModel(PixArtTransformerConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(PixArtTransformer2DModel))
    {
        config.Validate();
        Config = config;
        int dim = config.InnerDim;
        pos_embed = new PatchEmbed(config.SampleSize, config.PatchSize, config.InChannels, dim, config.ResolvedInterpolationScale, device, dtype);
        transformer_blocks = new ModuleList<BasicTransformerBlock>(
            Enumerable.Range(0, config.NumLayers).Select(_ => new BasicTransformerBlock(config, device, dtype)).ToArray());
        norm_out = nn.LayerNorm(dim, 1e-6, elementwise_affine: false, device: device, dtype: dtype);
        scale_shift_table = new Parameter(torch.randn(new long[] { 2, dim }, dtype: dtype, device: device).div_(Math.Sqrt(dim)));
        proj_out = nn.Linear(dim, config.PatchSize * config.PatchSize * config.ResolvedOutChannels, hasBias: true, device: device, dtype: dtype);
        adaln_single = new AdaLayerNormSingle(dim, config.ResolvedUseAdditionalConditions, device, dtype);
        if (config.CaptionChannels is int captionChannels)
            caption_projection = new PixArtAlphaTextProjection(captionChannels, dim, device, dtype);
        RegisterComponents();
    }

    /// <summary>Builds <paramref name="config"/>'s model on the meta device (no memory) and lists its tensors.</summary>
    public static IReadOnlyList<TensorInfo> DescribeParameters(PixArtTransformerConfig config)
    {
        using var model = new PixArtTransformer2DModel(config, META);
        return TensorListing.Of(model);
    }

    /// <summary>Number of parameters of a model with <paramref name="config"/> (computed on the meta device).</summary>
    public static long CountParameters(PixArtTransformerConfig config) => DescribeParameters(config).Sum(t => t.ElementCount);

    /// <summary>
    /// Loads a diffusers transformer: a folder with <c>config.json</c> and <c>diffusion_pytorch_model*.safetensors</c>
    /// (sharded or not), or a pipeline folder holding such a <c>transformer/</c> subfolder. Strict: every key must match.
    /// </summary>
    public static PixArtTransformer2DModel FromPretrained(string path, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        string folder = ResolveFolder(path);
        var config = PixArtTransformerConfig.Load(Path.Combine(folder, "config.json"));
        // Built on meta and given uninitialised storage: a random init would cost more than the read, and the strict
        // load below overwrites (or rejects) every parameter.
        var model = new PixArtTransformer2DModel(config, META, dtype);
        try
        {
            ParameterMaterializer.Materialize(model, device ?? CPU);
        }
        catch { model.Dispose(); throw; }
        try
        {
            model.LoadWeights(folder);
            return model;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>Loads weights from a safetensors file, index.json or folder into this model (strict, converting dtypes).</summary>
    public void LoadWeights(string path)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(path, "diffusion_pytorch_model");
        using (no_grad()) checkpoint.LoadInto(this);
    }

    /// <summary>Writes <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c> (sharded above
    /// <paramref name="maxShardBytes"/>) into <paramref name="folder"/>, as diffusers' save_pretrained does.
    /// <paramref name="replacements"/>: tensors written instead of the model's own of the same names (a trainer's float32 masters).</summary>
    public void SavePretrained(string folder, long maxShardBytes = 10L * 1000 * 1000 * 1000, IReadOnlyDictionary<string, Tensor>? replacements = null)
    {
        Directory.CreateDirectory(folder);
        var sources = state_dict().Select(kv => TensorSource.Of(kv.Key, replacements?.GetValueOrDefault(kv.Key) ?? kv.Value)).ToList();
        if (sources.Sum(s => s.ByteLength) <= maxShardBytes)
            SafetensorsWriter.Save(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), sources, new Dictionary<string, string> { ["format"] = "pt" });
        else
            SafetensorsWriter.SaveSharded(folder, "diffusion_pytorch_model", sources, maxShardBytes);
        Config.Save(Path.Combine(folder, "config.json"));
    }

    static string ResolveFolder(string path)
    {
        if (File.Exists(Path.Combine(path, "transformer", "config.json"))) return Path.Combine(path, "transformer");
        if (File.Exists(Path.Combine(path, "config.json"))) return path;
        throw new FileNotFoundException($"{path}: no config.json (expected a diffusers transformer folder or a pipeline folder with transformer/)");
    }

    /// <summary>
    /// Predicts noise and variance for the latents at the given timesteps, conditioned on caption features.
    /// Returns [B, out_channels, H, W] (channels 0..3 noise, 4..7 learned variance) in the dtype of
    /// <paramref name="hiddenStates"/>. Any H, W divisible by the patch size (non-square included).
    /// </summary>
    /// <param name="hiddenStates">Latents [B, in_channels, H, W] (already multiplied by the VAE scaling factor).</param>
    /// <param name="encoderHiddenStates">T5 features [B, L, caption_channels], before caption_projection.</param>
    /// <param name="timestep">Diffusion timesteps [B] or a scalar; may be fractional.</param>
    /// <param name="encoderAttentionMask">[B, L] with 1 = token, 0 = padding (or an additive bias [B, 1, L]); null attends to every token.</param>
    /// <param name="resolution">α-MS micro-condition: [B, 2] image (height, width) in pixels. Required iff the config uses additional conditions.</param>
    /// <param name="aspectRatio">α-MS micro-condition: [B, 1] height / width.</param>
    /// <param name="tap">Optional observer of named intermediates (names of the reference fixtures' debug tensors).</param>
    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor timestep, Tensor? encoderAttentionMask = null,
        Tensor? resolution = null, Tensor? aspectRatio = null, Action<string, Tensor>? tap = null)
    {
        CheckInputs(hiddenStates, encoderHiddenStates, encoderAttentionMask);
        using var scope = NewDisposeScope();
        long batch = hiddenStates.shape[0];
        int p = Config.PatchSize;
        long height = hiddenStates.shape[2] / p, width = hiddenStates.shape[3] / p;

        var x = pos_embed.forward(hiddenStates);
        if (tap != null) { tap("pos_embed_table", pos_embed.PositionTable(height, width, x.device)); tap("pos_embed", x); }
        var computeDtype = x.dtype;

        if (timestep.dim() == 0) timestep = timestep.expand(batch);
        var (modulation, embeddedTimestep) = adaln_single.forward(timestep, resolution, aspectRatio, batch, computeDtype, tap);
        tap?.Invoke("timestep_embedding", embeddedTimestep);
        tap?.Invoke("adaln_single_modulation", modulation);

        // diffusers turns a 0/1 mask into the additive bias (1 - mask) * -10000, shape [B, 1, L].
        Tensor? contextBias = encoderAttentionMask switch
        {
            null => null,
            { } m when m.dim() == 2 => ((1 - m.to(computeDtype)) * -10000.0).unsqueeze(1),
            { } m => m.to(computeDtype),
        };

        var context = encoderHiddenStates;
        if (caption_projection is not null)
        {
            context = caption_projection.forward(encoderHiddenStates).view(batch, -1, x.shape[^1]);
            tap?.Invoke("caption_projection", context);
        }

        bool checkpoint = GradientCheckpointing && training && is_grad_enabled();
        for (int i = 0; i < transformer_blocks.Count; i++)
        {
            var block = transformer_blocks[i];
            x = checkpoint
                ? GradientCheckpoint.Run(a => block.forward(a[0]!, a[1], a[2], a[3]!), new[] { x, context, contextBias, modulation }, block.parameters())
                : block.forward(x, context, contextBias, modulation);
            tap?.Invoke($"block{i}_output", x);
        }

        // Final layer: modulated norm, projection to patch pixels, then unpatchify.
        var shiftScale = (scale_shift_table.unsqueeze(0) + embeddedTimestep.unsqueeze(1)).chunk(2, dim: 1);
        x = DtypeBoundary.Call(norm_out, x) * (1 + shiftScale[1]) + shiftScale[0];
        x = DtypeBoundary.Call(proj_out, x);
        tap?.Invoke("proj_out", x);

        int c = Config.ResolvedOutChannels;
        var output = x.reshape(batch, height, width, p, p, c)
            .permute(0, 5, 1, 3, 2, 4)   // n h w p q c -> n c h p w q
            .reshape(batch, c, height * p, width * p);
        return output.to(hiddenStates.dtype).MoveToOuterDisposeScope();
    }

    void CheckInputs(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor? mask)
    {
        string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
        if (hiddenStates.dim() != 4 || hiddenStates.shape[1] != Config.InChannels)
            throw new ArgumentException($"hidden_states: shape {Shape(hiddenStates)}, expected [B, {Config.InChannels}, H, W]");
        int p = Config.PatchSize;
        if (hiddenStates.shape[2] % p != 0 || hiddenStates.shape[3] % p != 0)
            throw new ArgumentException($"hidden_states: latent size {hiddenStates.shape[2]}x{hiddenStates.shape[3]} is not a multiple of patch_size {p}");
        long expectedWidth = Config.CaptionChannels ?? Config.CrossAttentionDim ?? Config.InnerDim;
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[0] != hiddenStates.shape[0] || encoderHiddenStates.shape[2] != expectedWidth)
            throw new ArgumentException($"encoder_hidden_states: shape {Shape(encoderHiddenStates)}, expected [{hiddenStates.shape[0]}, L, {expectedWidth}]");
        if (mask is not null && mask.shape[0] != hiddenStates.shape[0] || mask is not null && mask.shape[^1] != encoderHiddenStates.shape[1])
            throw new ArgumentException($"encoder_attention_mask: shape {Shape(mask!)}, expected [{hiddenStates.shape[0]}, {encoderHiddenStates.shape[1]}]");
    }
}
