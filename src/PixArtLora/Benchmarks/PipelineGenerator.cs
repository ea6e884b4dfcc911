using System.Diagnostics;
using PixArtLora.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>
/// <see cref="IEndToEndGenerator"/> over <see cref="PixArtPipeline"/>: one square image per generation through
/// <see cref="PixArtPipeline.Generate"/> (sampler loop with classifier-free guidance, i.e. a batch of 2 per
/// transformer call, then the VAE decode), with prompt features encoded by <see cref="PixArtPipeline.EncodePrompts"/>.
/// </summary>
public sealed class PipelineGenerator : IEndToEndGenerator
{
    /// <summary>A typical caption: a couple of dozen T5 tokens, padded to the model's token length like any prompt.</summary>
    public const string DefaultPrompt =
        "A small cactus with a happy face in the Sahara desert, golden hour light, detailed photograph, shallow depth of field";

    readonly PixArtPipeline _pipeline;
    readonly int _resolution;
    readonly SamplingChoice _sampling;
    readonly long _seed;
    readonly string _prompt;

    /// <param name="pipeline">The pipeline (not disposed here).</param>
    /// <param name="resolution">Square image side in pixels; a multiple of <see cref="PixArtPipeline.SizeMultiple"/>.</param>
    /// <param name="steps">Sampler steps; null: the model's default.</param>
    /// <param name="guidanceScale">Null: the model's default (4.5, guidance on).</param>
    /// <param name="seed">Seed of the initial noise.</param>
    /// <param name="prompt">Null: <see cref="DefaultPrompt"/>.</param>
    public PipelineGenerator(PixArtPipeline pipeline, int resolution, int? steps = null, double? guidanceScale = null, long seed = 0, string? prompt = null)
    {
        if (resolution <= 0 || resolution % pipeline.SizeMultiple != 0)
            throw new ArgumentException($"--resolution {resolution}: expected a positive multiple of {pipeline.SizeMultiple} (VAE factor {pipeline.VaeScaleFactor} × patch size {pipeline.TransformerConfig.PatchSize})");
        _pipeline = pipeline;
        _resolution = resolution;
        _sampling = pipeline.ChooseSampling(null, steps, guidanceScale);
        _seed = seed;
        _prompt = prompt ?? DefaultPrompt;
    }

    /// <summary>Sampler, steps and guidance every generation uses.</summary>
    public SamplingChoice Sampling => _sampling;

    /// <summary>Image side in pixels.</summary>
    public int Resolution => _resolution;

    /// <summary>Encodes the prompt and, under guidance, the empty negative prompt: a <see cref="PromptEmbeddings"/> of 1 or 2 rows.</summary>
    public object EncodePrompt() =>
        _pipeline.EncodePrompts(_sampling.UsesGuidance ? new[] { _prompt, "" } : new[] { _prompt });

    public GenerationPhases Generate(object encoded)
    {
        var features = encoded as PromptEmbeddings
                       ?? throw new ArgumentException($"expected the {nameof(PromptEmbeddings)} returned by {nameof(EncodePrompt)}, got {encoded?.GetType().Name ?? "null"}");
        using var prompt = features.Select(new long[] { 0 });
        using var negative = _sampling.UsesGuidance ? features.Select(new long[] { 1 }) : null;
        var request = new GenerationRequest
        {
            PromptEmbeddings = prompt, NegativeEmbeddings = negative, Width = _resolution, Height = _resolution,
            // Exactly the asked size: binning would pick the nearest trained bin instead (the same for square sizes it knows).
            UseResolutionBinning = false,
            Sampler = _sampling.Sampler, Steps = _sampling.Steps, GuidanceScale = _sampling.GuidanceScale, Seed = _seed,
        };
        bool cuda = _pipeline.Device.type == DeviceType.CUDA;
        long start = Stopwatch.GetTimestamp(), lastStep = start;
        int steps = 0;
        using var result = _pipeline.Generate(request, progress =>
        {
            // CUDA runs asynchronously: wait for the step so that the split between sampling and decoding is real.
            if (cuda) torch.cuda.synchronize(_pipeline.Device);
            lastStep = Stopwatch.GetTimestamp();
            steps = progress.Step;
        });
        long end = Stopwatch.GetTimestamp();
        return new GenerationPhases(
            Stopwatch.GetElapsedTime(start, lastStep).TotalSeconds, steps, Stopwatch.GetElapsedTime(lastStep, end).TotalSeconds,
            result.Images.shape[2], result.Images.shape[3]);
    }
}
