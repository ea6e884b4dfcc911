using PixArtLora.Diffusion;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>
/// What to generate with <see cref="PixArtPipeline.Generate"/>. Unset values take the model's defaults: its base
/// resolution, the registry's sampler, steps and guidance scale. The batch is prompts × <see cref="ImagesPerPrompt"/>
/// images, prompt-major (all images of prompt 0 first), as in diffusers.
/// </summary>
public sealed record GenerationRequest
{
    /// <summary>Prompts, encoded with the pipeline's text encoder. Ignored when <see cref="PromptEmbeddings"/> is given.</summary>
    public IReadOnlyList<string> Prompts { get; init; } = Array.Empty<string>();

    /// <summary>Precomputed prompt features (one row per prompt), e.g. a trainer's cached T5 features. Not disposed by the pipeline.</summary>
    public PromptEmbeddings? PromptEmbeddings { get; init; }

    /// <summary>Negative prompt: the unconditional branch of guidance is its T5 embedding (diffusers' default: empty).</summary>
    public string NegativePrompt { get; init; } = "";

    /// <summary>Precomputed negative features: one row (shared) or one per prompt. Not disposed by the pipeline.</summary>
    public PromptEmbeddings? NegativeEmbeddings { get; init; }

    /// <summary>Images per prompt.</summary>
    public int ImagesPerPrompt { get; init; } = 1;

    /// <summary>Requested width in pixels (default: the model's base size).</summary>
    public int? Width { get; init; }

    /// <summary>Requested height in pixels (default: the model's base size).</summary>
    public int? Height { get; init; }

    /// <summary>Generate at the nearest aspect-ratio bin and resize back (diffusers' default: on).</summary>
    public bool UseResolutionBinning { get; init; } = true;

    /// <summary>dpm (dpm-solver), ddim, ddpm, euler, sa-solver or iddpm; default the registry's (DPM-Solver++).</summary>
    public string? Sampler { get; init; }

    /// <summary>Sampler steps; default the registry's for the sampler.</summary>
    public int? Steps { get; init; }

    /// <summary>Classifier-free guidance scale; default 4.5. At most 1 disables the unconditional pass.</summary>
    public double? GuidanceScale { get; init; }

    /// <summary>Sampler settings beyond the scheduler config (DDIM eta, Euler churn …).</summary>
    public SamplerOptions? SamplerOptions { get; init; }

    /// <summary>Seed of the first image; image i of the batch uses Seed + i (unless <see cref="Seeds"/> is given).</summary>
    public long Seed { get; init; }

    /// <summary>One seed per image of the batch (prompts × images per prompt), overriding <see cref="Seed"/>.</summary>
    public IReadOnlyList<long>? Seeds { get; init; }

    /// <summary>
    /// Initial latents [batch, C, h, w] at the generated size, replacing the seeded draw (diffusers' <c>latents=</c>);
    /// stochastic samplers still draw their noise from the seeds. Not disposed by the pipeline.
    /// </summary>
    public Tensor? Latents { get; init; }

    /// <summary>Seeds of the batch's images, in batch order.</summary>
    public IReadOnlyList<long> SeedsFor(int batch)
    {
        if (Seeds is { } given)
        {
            if (given.Count != batch) throw new ArgumentException($"{given.Count} seeds given for a batch of {batch} images");
            return given;
        }
        return Enumerable.Range(0, batch).Select(i => unchecked(Seed + i)).ToList();
    }
}
