using PixArtLora.Models.Transformer;

namespace PixArtLora.Registry;

/// <summary>PixArt generation: α (T5 120 tokens, SD VAE) or Σ (T5 300 tokens, SDXL VAE).</summary>
public enum PixArtFamily { Alpha, Sigma }

/// <summary>A folder of a Hugging Face model repository, e.g. (<c>PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers</c>, <c>vae</c>).</summary>
public sealed record HubComponent(string Repo, string Subfolder)
{
    public override string ToString() => $"{Repo}/{Subfolder}";
}

/// <summary>A single file of a Hugging Face repository (the original .pth checkpoints).</summary>
public sealed record HubFile(string Repo, string Path)
{
    public string Url => $"https://huggingface.co/{Repo}/resolve/main/{Path}";
    public override string ToString() => $"{Repo}/{Path}";
}

/// <summary>The autoencoder a variant was trained with and the factor latents are multiplied by after encoding.</summary>
/// <param name="Name">What it is: <c>sd-vae-ft-ema</c> (α), <c>sdxl-vae</c> (Σ), <c>tiny-random</c>.</param>
/// <param name="Source">Where its diffusers weights live; null for the offline tiny variant.</param>
/// <param name="ScalingFactor">latents = scaling_factor × posterior sample (0.18215 for α, 0.13025 for Σ).</param>
public sealed record VaeSpec(string Name, HubComponent? Source, double ScalingFactor);

/// <summary>Sampling defaults of the official inference script (scripts/inference.py) and diffusers' pipelines.</summary>
/// <param name="Sampler">Default sampler: <c>dpm-solver</c> (DPM-Solver++ 2M multistep), as both references use.</param>
/// <param name="Steps">Steps for the default sampler.</param>
/// <param name="GuidanceScale">Classifier-free guidance scale.</param>
public sealed record SamplerDefaults(string Sampler, int Steps, double GuidanceScale)
{
    /// <summary>The official script's default step count per sampler (<c>sample_steps_default</c>).</summary>
    public static IReadOnlyDictionary<string, int> OfficialSteps { get; } =
        new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase) { ["dpm-solver"] = 20, ["iddpm"] = 100, ["sa-solver"] = 25 };

    /// <summary>Default steps for <paramref name="sampler"/>, or <see cref="Steps"/> for a sampler the official script does not list.</summary>
    public int StepsFor(string sampler) => OfficialSteps.TryGetValue(sampler, out var n) ? n : Steps;
}

/// <summary>
/// One released PixArt checkpoint (or the offline <c>tiny</c> test model): where its parts live on the Hub, how its
/// transformer is configured, and the settings it was trained and is sampled with. Read from <see cref="ModelRegistry"/>.
/// </summary>
public sealed record ModelVariant
{
    /// <summary>Short id used on the command line, e.g. <c>sigma-1024-ms</c>.</summary>
    public required string Id { get; init; }
    /// <summary>The release name, e.g. <c>PixArt-Sigma-XL-2-1024-MS</c>.</summary>
    public required string Name { get; init; }
    public required PixArtFamily Family { get; init; }
    /// <summary>Base image size in pixels (256, 512, 1024, 2048); latents are a eighth of it.</summary>
    public required int ImageSize { get; init; }
    /// <summary>Trained on multi-aspect buckets ("MS" releases). The others were trained on square crops.</summary>
    public required bool MultiScale { get; init; }

    /// <summary>diffusers transformer (config.json + safetensors); null for the offline tiny variant.</summary>
    public required HubComponent? Transformer { get; init; }
    /// <summary>T5-XXL encoder (transformers T5EncoderModel layout).</summary>
    public required HubComponent? TextEncoder { get; init; }
    /// <summary>T5 SentencePiece tokenizer.</summary>
    public required HubComponent? Tokenizer { get; init; }
    /// <summary>DPM-Solver++ scheduler config written by the conversion scripts.</summary>
    public required HubComponent? Scheduler { get; init; }
    public required VaeSpec Vae { get; init; }
    /// <summary>The original training checkpoint (.pth) of the official repository, for conversion and resuming.</summary>
    public required HubFile? OriginalCheckpoint { get; init; }

    /// <summary>The transformer's config.json as this variant publishes it, with nullable fields resolved explicitly.</summary>
    public required PixArtTransformerConfig TransformerConfig { get; init; }
    /// <summary>T5 token length captions are padded / truncated to (α 120, Σ 300).</summary>
    public required int CaptionTokens { get; init; }

    /// <summary>Aspect-ratio buckets for training: the official 40-bin table of the base size.</summary>
    public required AspectRatioTable TrainingAspectRatios { get; init; }
    /// <summary>Resolution binning for generation: diffusers' pipeline table of the base size.</summary>
    public required AspectRatioTable InferenceAspectRatios { get; init; }
    public required SamplerDefaults Sampling { get; init; }

    /// <summary>Latent size (image size / 8) = transformer sample_size.</summary>
    public int LatentSize => TransformerConfig.SampleSize;
    /// <summary>True when nothing of this variant comes from the Hub (random or deterministic weights).</summary>
    public bool IsOffline => Transformer is null;
    /// <summary>α-MS micro-conditions (resolution and aspect ratio) are fed to the timestep embedding.</summary>
    public bool UsesMicroConditions => TransformerConfig.ResolvedUseAdditionalConditions;

    /// <summary>Every Hugging Face repository this variant reads from (transformer first).</summary>
    public IEnumerable<string> HubRepos =>
        new[] { Transformer?.Repo, TextEncoder?.Repo, Tokenizer?.Repo, Vae.Source?.Repo, Scheduler?.Repo }
            .OfType<string>().Distinct(StringComparer.OrdinalIgnoreCase);
}
