using PixArtLora.Diffusion;
using PixArtLora.Lora;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using PixArtLora.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>Progress of one generation after each sampler step; <see cref="Latents"/> is only valid during the callback.</summary>
public readonly record struct GenerationProgress(int Step, int Steps, Tensor Latents);

/// <summary>
/// Text-to-image generation with PixArt-α / PixArt-Σ, step for step as diffusers' PixArtAlphaPipeline and
/// PixArtSigmaPipeline: prompt preparation (lower-case, strip, T5 at the model's token length), classifier-free guidance
/// against the negative prompt's embedding (default empty), resolution binning, α micro-conditions, the sampler loop,
/// and the VAE decode (latents / scaling_factor, optionally tiled) with the output clamped to [0, 1].
/// </summary>
/// <remarks>
/// Memory: weights load on first use. The text encoder loads when prompts are encoded and is released right after
/// (unless <see cref="KeepTextEncoder"/>), before the transformer and VAE load for the first image; so T5-XXL and the
/// transformer are never in memory together unless asked.
/// <para>Create with <see cref="Load"/> (registry id, local folder or Hub id) or, around modules you already hold (a
/// trainer's validation images), with <see cref="FromModules"/>.</para>
/// </remarks>
public sealed partial class PixArtPipeline : IDisposable
{
    Func<PixArtTransformer2DModel>? _loadTransformer;
    PixArtTransformer2DModel? _transformer;
    Func<AutoencoderKL>? _loadVae;
    AutoencoderKL? _vae;
    readonly Func<IPromptEncoder>? _loadTextEncoder;
    IPromptEncoder? _textEncoder;
    readonly bool _ownsModules;

    /// <summary>The transformer's config.json.</summary>
    public PixArtTransformerConfig TransformerConfig { get; }
    /// <summary>The VAE's config.json (scaling factor, latent channels).</summary>
    public AutoencoderKLConfig VaeConfig { get; }
    /// <summary>The model's scheduler config, given to whichever sampler is chosen (diffusers' from_config).</summary>
    public SchedulerConfig SchedulerConfig { get; }
    /// <summary>The registry variant (defaults for sampler, steps, token length); null for an unknown architecture.</summary>
    public ModelVariant? Variant { get; }
    /// <summary>How the model is named in image metadata.</summary>
    public string ModelName { get; }
    /// <summary>T5 token length prompts are padded or truncated to.</summary>
    public int MaxSequenceLength { get; }
    /// <summary>The LoRAs applied to the transformer, with their current scales (adapter i is named <c>lora{i}</c>).</summary>
    public IReadOnlyList<LoraSpec> Loras => _loras;
    readonly List<LoraSpec> _loras;
    /// <summary>Where the transformer and VAE run.</summary>
    public Device Device { get; }
    /// <summary>Keep T5 loaded after <see cref="EncodePrompts"/> (release it yourself with <see cref="ReleaseTextEncoder"/>).</summary>
    public bool KeepTextEncoder { get; set; }
    /// <summary>VAE tiling used by <see cref="DecodeLatents"/>.</summary>
    public VaeTiling VaeTiling { get; set; }

    /// <summary>Pixels per latent (8 for PixArt's VAEs).</summary>
    public int VaeScaleFactor => VaeConfig.SpatialScaleFactor;
    /// <summary>Default image side: the transformer's sample size × VAE factor (256, 512, 1024, 2048).</summary>
    public int DefaultImageSize => TransformerConfig.SampleSize * VaeScaleFactor;
    /// <summary>Generated sizes must be multiples of this (VAE factor × patch size) on both sides.</summary>
    public int SizeMultiple => VaeScaleFactor * TransformerConfig.PatchSize;

    /// <summary>
    /// diffusers' binning table for this transformer (chosen by sample size: 32 → 256, 64 → 512, 128 → 1024, 256 → 2048),
    /// or null when there is none for its size.
    /// </summary>
    public AspectRatioTable? BinningTable => DefaultImageSize is 256 or 512 or 1024 or 2048
        ? AspectRatioBins.ForInference(DefaultImageSize)
        : null;

    /// <summary>The transformer (loaded, with its LoRAs, on first access).</summary>
    public PixArtTransformer2DModel Transformer
    {
        get
        {
            if (_transformer is null)
            {
                var load = _loadTransformer ?? throw new ObjectDisposedException(nameof(PixArtPipeline));
                _transformer = load();
                _loadTransformer = null;
            }
            return _transformer;
        }
    }

    /// <summary>The LoRA adapters on the transformer (null when none were given).</summary>
    public LoraNetwork? LoraNetwork { get; private set; }

    /// <summary>The VAE (loaded on first access).</summary>
    public AutoencoderKL Vae
    {
        get
        {
            if (_vae is null)
            {
                var load = _loadVae ?? throw new ObjectDisposedException(nameof(PixArtPipeline));
                _vae = load();
                _loadVae = null;
            }
            return _vae;
        }
    }

    /// <summary>True while T5 is in memory.</summary>
    public bool TextEncoderLoaded => _textEncoder is not null;

    /// <summary>
    /// Encodes prompts as the pipelines do (lower-case and strip, T5 at <see cref="MaxSequenceLength"/> tokens) into
    /// features on the CPU, loading T5 if needed and releasing it afterwards unless <see cref="KeepTextEncoder"/>.
    /// Encode every prompt of a run (negative prompt included) in one call to load T5 once.
    /// </summary>
    public PromptEmbeddings EncodePrompts(IReadOnlyList<string> prompts)
    {
        if (prompts.Count == 0) throw new ArgumentException("no prompts to encode");
        try
        {
            var encoder = _textEncoder ??= (_loadTextEncoder ?? throw new InvalidOperationException(
                $"{ModelName}: this pipeline has no text encoder and tokenizer; pass prompt embeddings, or load the model with its text_encoder/ and tokenizer/ (components_from)")).Invoke();
            // Chunks bound T5's activations for long prompt files; each row is encoded independently either way.
            const int chunk = 8;
            PromptEmbeddings? all = null;
            for (int start = 0; start < prompts.Count; start += chunk)
            {
                var part = prompts.Skip(start).Take(chunk).ToList();
                PromptEmbeddings encoded;
                using (var scope = NewDisposeScope())
                {
                    var (embeddings, mask) = encoder.Encode(part);
                    encoded = new PromptEmbeddings(embeddings.cpu(), mask.cpu());
                }
                if (all is null) { all = encoded; continue; }
                var joined = PromptEmbeddings.Concat(all, encoded);
                all.Dispose();
                encoded.Dispose();
                all = joined;
            }
            return all!;
        }
        finally
        {
            if (!KeepTextEncoder) ReleaseTextEncoder();
        }
    }

    /// <summary>
    /// Changes the scale of LoRA <paramref name="index"/> (order of <see cref="Loras"/>) for the following generations:
    /// 0 switches it off, 1 applies it as trained. Loads the transformer if needed.
    /// </summary>
    public void SetLoraScale(int index, double scale)
    {
        if (index < 0 || index >= _loras.Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"this pipeline has {_loras.Count} LoRA(s)");
        if (double.IsNaN(scale) || double.IsInfinity(scale)) throw new ArgumentException($"LoRA scale {scale} is not a finite number");
        _ = Transformer;
        LoraNetwork!.SetStrength($"lora{index}", scale);
        _loras[index] = _loras[index] with { Scale = scale };
    }

    /// <summary>Frees T5's memory now (it reloads if prompts are encoded again).</summary>
    public void ReleaseTextEncoder()
    {
        if (_textEncoder is null) return;
        _textEncoder.Dispose();
        _textEncoder = null;
        // The transformer and VAE reuse only part of T5's memory; the rest would stay resident (see CpuAllocatorTuning).
        CpuAllocatorTuning.ReturnFreeMemory();
    }

    /// <summary>The requested and generated size for a request (defaults: the model's base size).</summary>
    public GenerationSize PlanSize(int? width, int? height, bool useResolutionBinning)
    {
        var table = BinningTable;
        if (useResolutionBinning && table is null)
            throw new InvalidOperationException(
                $"{ModelName}: resolution binning has no table for base size {DefaultImageSize} (sample_size {TransformerConfig.SampleSize}); turn it off (use_resolution_binning: false)");
        return ResolutionBinning.Plan(width ?? DefaultImageSize, height ?? DefaultImageSize, useResolutionBinning ? table : null, SizeMultiple);
    }

    /// <summary>Sampler, steps and guidance for a request: its values, else the scheduler config's sampler and the registry's defaults.</summary>
    public SamplingChoice ChooseSampling(string? sampler, int? steps, double? guidanceScale)
    {
        var defaults = Variant?.Sampling ?? SamplingChoice.FallbackDefaults;
        if (SchedulerConfig.ClassName is { } cls && SamplerFactory.NameForClass(cls) is { } fromConfig)
            defaults = defaults with { Sampler = fromConfig };
        return SamplingChoice.Resolve(sampler, steps, guidanceScale, defaults);
    }

    public void Dispose()
    {
        ReleaseTextEncoder();
        if (_ownsModules)
        {
            LoraNetwork?.Dispose();
            _transformer?.Dispose();
            _vae?.Dispose();
        }
        _transformer = null;
        _vae = null;
        _loadTransformer = null;
        _loadVae = null;
    }
}
