using PixArtLora.Data.Images;
using PixArtLora.Server;

namespace PixArtLora.Tests.Server;

/// <summary>The real backend of `lora serve` on the offline tiny model.</summary>
public class PipelineBackendTests
{
    sealed class Steps : IProgress<GenerationProgress>
    {
        public readonly List<GenerationProgress> Seen = new();
        public void Report(GenerationProgress value) { lock (Seen) Seen.Add(value); }
    }

    [Fact]
    public async Task GeneratesPngsWithParametersAndReportsEverySteps()
    {
        using var backend = PipelineBackend.Load("tiny", Array.Empty<string>(), "cpu", "fp32");
        Assert.Equal("dpm", backend.Info.Samplers[0].Name);
        var bin = backend.Info.Sizes.Nearest(256, 256);
        var steps = new Steps();
        var images = await backend.GenerateAsync(
            new GenerationRequest("a red circle", "", "dpm", 3, 4.5, 7, bin.Width, bin.Height, 2, Array.Empty<AppliedLora>()),
            steps, CancellationToken.None);
        Assert.Equal(2, images.Count);
        Assert.Equal(new long[] { 7, 8 }, images.Select(i => i.Seed));
        Assert.NotEqual(images[0].Png, images[1].Png);
        var text = PngTextChunks.Read(images[0].Png).First(c => c.Keyword == "parameters").Text;
        Assert.Equal(images[0].Parameters, text);
        var parsed = GenerationParameters.Parse(text);
        Assert.Equal("a red circle", parsed.Prompt);
        Assert.Equal(3, parsed.Steps);
        Assert.Equal(3, steps.Seen.Max(s => s.Step));
    }
}
