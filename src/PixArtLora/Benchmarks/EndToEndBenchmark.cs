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
/// <param name="PhasesWithTextEncoder">Sampler loop and decode of each <paramref name="WithTextEncoder"/> run.</param>
public sealed record EndToEndTiming(TimingStats WithoutTextEncoder, TimingStats WithTextEncoder,
    IReadOnlyList<double> TextEncoderSeconds, IReadOnlyList<GenerationPhases> Phases, IReadOnlyList<GenerationPhases> PhasesWithTextEncoder);

/// <summary>End-to-end seconds per image of any <see cref="IEndToEndGenerator"/>.</summary>
public static class EndToEndBenchmark
{
    /// <summary>
    /// Encodes the prompt once (untimed: it also loads T5 where that is lazy) and runs <paramref name="warmup"/>
    /// untimed generations from it, then <paramref name="repeats"/> pairs of timed runs: a generation from that
    /// prompt, and one that encodes the prompt again before generating. The two kinds alternate so that a drift of
    /// the machine's speed (a shared VM's is ±10 % within minutes) reaches both alike.
    /// </summary>
    public static EndToEndTiming Measure(IEndToEndGenerator generator, int warmup, int repeats)
    {
        if (repeats < 1) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "timed runs must be >= 1");
        var phases = new List<GenerationPhases>();
        var phasesWith = new List<GenerationPhases>();
        var encodeSeconds = new List<double>();
        var without = new List<TimingStats>();
        var with = new List<TimingStats>();
        var encoded = generator.EncodePrompt();
        try
        {
            for (int i = 0; i < warmup; i++) generator.Generate(encoded);
            for (int i = 0; i < repeats; i++)
            {
                without.Add(StepTimer.Measure(() => phases.Add(generator.Generate(encoded)), 0, 1));
                with.Add(StepTimer.Measure(() =>
                {
                    long start = Stopwatch.GetTimestamp();
                    var fresh = generator.EncodePrompt();
                    encodeSeconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                    try { phasesWith.Add(generator.Generate(fresh)); }
                    finally { (fresh as IDisposable)?.Dispose(); }
                }, 0, 1));
            }
        }
        finally { (encoded as IDisposable)?.Dispose(); }
        return new EndToEndTiming(Concatenate(without), Concatenate(with), encodeSeconds, phases, phasesWith);
    }

    static TimingStats Concatenate(IReadOnlyList<TimingStats> runs) =>
        new(runs.SelectMany(r => r.Seconds).ToList(), runs.SelectMany(r => r.CpuSeconds).ToList())
        {
            MinorPageFaults = runs.Sum(r => r.MinorPageFaults),
        };
}
