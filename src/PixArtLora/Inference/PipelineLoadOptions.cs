using System.Globalization;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>A LoRA file (or PEFT folder) and the strength it is applied with (1 = as trained, 0 = off).</summary>
public sealed record LoraSpec(string Path, double Scale = 1.0)
{
    /// <summary>
    /// Parses <c>path</c> or <c>path:scale</c> (a trailing <c>:number</c> is the scale, so paths containing ':' still
    /// work); a path without a scale gets <paramref name="defaultScale"/>.
    /// </summary>
    public static LoraSpec Parse(string spec, double defaultScale = 1.0)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new ArgumentException("empty LoRA path");
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && double.TryParse(spec[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var scale))
        {
            if (double.IsNaN(scale) || double.IsInfinity(scale)) throw new ArgumentException($"LoRA '{spec}': scale {scale} is not a finite number");
            return new LoraSpec(spec[..colon], scale);
        }
        return new LoraSpec(spec, defaultScale);
    }

    public override string ToString() => $"{Path}:{Scale.ToString("G", CultureInfo.InvariantCulture)}";
}

/// <summary>How <see cref="PixArtPipeline.Load"/> builds a pipeline. Every value has a usable default.</summary>
public sealed record PipelineLoadOptions
{
    /// <summary>Where the transformer and VAE run (default CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>Weights and compute dtype of the transformer, VAE and (unless <see cref="TextEncoderDType"/>) T5.
    /// float32 or bfloat16; float16 only on CUDA (a VAE with force_upcast stays float32 then, as in diffusers).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Where T5 runs (default <see cref="Device"/>); the CPU keeps GPU memory for the transformer.</summary>
    public Device? TextEncoderDevice { get; init; }

    /// <summary>T5's dtype (default <see cref="DType"/>).</summary>
    public ScalarType? TextEncoderDType { get; init; }

    /// <summary>Keep T5 loaded after encoding (several batches of new prompts); by default it is released at once.</summary>
    public bool KeepTextEncoder { get; init; }

    /// <summary>Where text encoder, tokenizer, VAE and scheduler come from when the model lacks them (registry id, pipeline folder or Hub id).</summary>
    public string? ComponentsFrom { get; init; }

    /// <summary>A fine-tuned or merged transformer replacing the model's: a transformer or pipeline folder, or one .safetensors file
    /// (read with the model's transformer config).</summary>
    public string? Checkpoint { get; init; }

    /// <summary>LoRAs applied on top of the transformer, each with its scale.</summary>
    public IReadOnlyList<LoraSpec> Loras { get; init; } = Array.Empty<LoraSpec>();

    /// <summary>T5 token length; default the registry's (α 120, Σ 300; tiny 32), else 300.</summary>
    public int? MaxSequenceLength { get; init; }

    /// <summary>VAE tiling (default: tile only above ~1280² pixels, see <see cref="VaeTiling.Default"/>).</summary>
    public VaeTiling? VaeTiling { get; init; }

    /// <summary>Turns a Hub component into a local folder; default a <see cref="Hub.HubClient"/> configured from the environment.</summary>
    public Func<HubComponent, string>? Fetch { get; init; }

    /// <summary>Where the tiny model is generated (default <see cref="TinyModels.DefaultModelsRoot"/>).</summary>
    public string? TinyModelsRoot { get; init; }

    /// <summary>Receives notes and warnings (LoRA warnings, what was loaded from where).</summary>
    public Action<string>? Log { get; init; }
}
