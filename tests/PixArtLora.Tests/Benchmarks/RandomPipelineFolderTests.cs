using PixArtLora.Benchmarks;
using PixArtLora.Inference;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using TorchSharp;

namespace PixArtLora.Tests.Benchmarks;

public class RandomPipelineFolderTests
{
    [Fact]
    public void AReleasedVariantsFolderLoadsAsAPipelineWithTheRealVaeAndCaptionsOfTheTransformersWidth()
    {
        // A released variant with the tiny transformer swapped in, so the test writes megabytes, not gigabytes; the VAE
        // keeps the released architecture (SDXL's KL-f8) and the T5 stand-in follows the transformer's caption width.
        var variant = ModelRegistry.Get("sigma-512-ms") with { Id = "sigma-512-ms-narrow", TransformerConfig = TinyModels.Variant.TransformerConfig };
        var folder = Directory.CreateTempSubdirectory("pixart-random-pipeline-").FullName;
        try
        {
            var log = new List<string>();
            RandomPipelineFolder.Write(folder, variant, log.Add);
            Assert.Contains(log, l => l.Contains("stand-in for T5-XXL"));
            foreach (var file in new[] { "model_index.json", "transformer/config.json", "vae/config.json", "text_encoder/config.json", "tokenizer/spiece.model", "scheduler/scheduler_config.json" })
                Assert.True(File.Exists(Path.Combine(folder, file)), $"missing {file}");

            using (var vae = AutoencoderKL.Load(Path.Combine(folder, "vae")))
                Assert.Equal(new[] { 128, 256, 512, 512 }, vae.Config.BlockOutChannels);

            using var pipeline = PixArtPipeline.Load(folder, new PipelineLoadOptions { MaxSequenceLength = 300 });
            using var prompts = pipeline.EncodePrompts(new[] { "a red square" });
            Assert.Equal(new long[] { 1, 300, variant.TransformerConfig.CaptionChannels!.Value }, prompts.Embeddings.shape);
            using var result = pipeline.Generate(new GenerationRequest
            {
                Prompts = new[] { "a red square" }, Steps = 2, Width = 64, Height = 64, UseResolutionBinning = false, Seed = 1,
            });
            Assert.Equal(new long[] { 1, 3, 64, 64 }, result.Images.shape);
            Assert.True(torch.isfinite(result.Images).all().item<bool>());
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
