using System.Diagnostics;

namespace PixArtLora.Benchmarks;

/// <summary>Where the time of one generated image went.</summary>
/// <param name="DenoiseSeconds">The sampler loop: every transformer evaluation (a batch of 2 under guidance) and sampler update.</param>
/// <param name="SamplerSteps">Sampler steps run.</param>
/// <param name="DecodeSeconds">The VAE decode of the final latents and the post-processing.</param>
/// <param name="ImageHeight">Height of the generated image in pixels.</param>
/// <param name="ImageWidth">Width of the generated image in pixels.</param>
public sealed record GenerationPhases(double DenoiseSeconds, int SamplerSteps, double DecodeSeconds, long ImageHeight, long ImageWidth)
{
    /// <summary>Seconds per sampler step (transformer and sampler).</summary>
    public double SecondsPerSamplerStep => SamplerSteps > 0 ? DenoiseSeconds / SamplerSteps : 0;
}

/// <summary>
/// What the end-to-end benchmark needs from an inference pipeline: encode the prompt with T5, and generate one image
/// (sampling loop + VAE decode) from an encoded prompt. <see cref="PipelineGenerator"/> implements it over
/// <see cref="Inference.PixArtPipeline"/>; the benchmark only times it.
/// </summary>
public interface IEndToEndGenerator
{
    /// <summary>Tokenises and encodes the benchmark prompt (and the negative prompt for CFG); returns a handle,
    /// disposed by the caller when it is <see cref="IDisposable"/>.</summary>
    object EncodePrompt();

    /// <summary>Generates one image from <paramref name="encoded"/> (all sampler steps and the VAE decode).</summary>
    GenerationPhases Generate(object encoded);
}

/// <summary>Seconds per image, text encoder excluded and included, and the phases of the timed images.</summary>
/// <param name="WithoutTextEncoder">Generation from a prompt encoded once beforehand.</param>
/// <param name="WithTextEncoder">Prompt encoding (T5 already loaded) plus generation.</param>
/// <param name="TextEncoderSeconds">The encoding part of each <paramref name="WithTextEncoder"/> run.</param>
/// <param name="Phases">Sampler loop and decode of each <paramref name="WithoutTextEncoder"/> run.</param>
public sealed record EndToEndTiming(TimingStats WithoutTextEncoder, TimingStats WithTextEncoder,
    IReadOnlyList<double> TextEncoderSeconds, IReadOnlyList<GenerationPhases> Phases);

/// <summary>End-to-end seconds per image of any <see cref="IEndToEndGenerator"/>.</summary>
public static class EndToEndBenchmark
{
    /// <summary>
    /// Encodes the prompt once (untimed: it also loads T5 where that is lazy), then times <paramref name="repeats"/>
    /// generations from it after <paramref name="warmup"/> untimed ones, then <paramref name="repeats"/> runs that
    /// encode the prompt again before generating.
    /// </summary>
    public static EndToEndTiming Measure(IEndToEndGenerator generator, int warmup, int repeats)
    {
        var phases = new List<GenerationPhases>();
        var encodeSeconds = new List<double>();
        var encoded = generator.EncodePrompt();
        TimingStats without;
        try
        {
            int run = 0;
            without = StepTimer.Measure(() =>
            {
                var p = generator.Generate(encoded);
                if (run++ >= warmup) phases.Add(p);
            }, warmup, repeats);
        }
        finally { (encoded as IDisposable)?.Dispose(); }

        var with = StepTimer.Measure(() =>
        {
            long start = Stopwatch.GetTimestamp();
            var fresh = generator.EncodePrompt();
            encodeSeconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            try { generator.Generate(fresh); }
            finally { (fresh as IDisposable)?.Dispose(); }
        }, 0, repeats);
        return new EndToEndTiming(without, with, encodeSeconds, phases);
    }
}
