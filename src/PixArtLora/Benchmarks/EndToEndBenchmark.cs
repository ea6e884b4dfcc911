namespace PixArtLora.Benchmarks;

/// <summary>
/// What the end-to-end benchmark needs from an inference pipeline: encode a prompt with T5, and generate one image
/// (sampling loop + VAE decode) from an encoded prompt. The pipeline implements it; the benchmark only times it.
/// </summary>
public interface IEndToEndGenerator
{
    /// <summary>Tokenises and encodes the benchmark prompt (and the empty prompt for CFG); returns an opaque handle.</summary>
    object EncodePrompt();

    /// <summary>Generates one image from <paramref name="encoded"/> (all sampler steps and the VAE decode).</summary>
    void Generate(object encoded);
}

/// <summary>Seconds per image, text encoder excluded and included.</summary>
public sealed record EndToEndTiming(TimingStats WithoutTextEncoder, TimingStats WithTextEncoder);

/// <summary>
/// End-to-end seconds per image. The hook for the inference pipeline (not part of the library yet): once it exists,
/// it implements <see cref="IEndToEndGenerator"/> and <c>lora bench --end_to_end</c> passes it here.
/// </summary>
public static class EndToEndBenchmark
{
    public static EndToEndTiming Measure(IEndToEndGenerator generator, int warmup, int repeats)
    {
        var encoded = generator.EncodePrompt();
        var without = StepTimer.Measure(() => generator.Generate(encoded), warmup, repeats);
        var with = StepTimer.Measure(() => generator.Generate(generator.EncodePrompt()), 0, repeats);
        return new EndToEndTiming(without, with);
    }
}
