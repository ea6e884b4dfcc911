using PixArtLora.Inference;
using PixArtLora.Tests.Parity;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Inference;

/// <summary>The pipeline API on the tiny model: seeds, batches, binning, guidance, memory, loading.</summary>
public class PixArtPipelineTests
{
    static PixArtPipeline LoadTiny(PipelineLoadOptions? options = null) =>
        PixArtPipeline.Load("tiny", (options ?? new PipelineLoadOptions()) with
        {
            TinyModelsRoot = InferenceFixtures.ModelsRoot,
            Fetch = c => throw new InvalidOperationException($"the tiny model must not touch the Hub ({c})"),
        });

    static GenerationRequest Small(params string[] prompts) => new()
    {
        Prompts = prompts, Steps = 2, Width = 64, Height = 64, UseResolutionBinning = false, Seed = 3,
    };

    [Fact]
    public void SameSeedSameImageAndEachImageDependsOnlyOnItsSeed()
    {
        using var pipeline = LoadTiny();
        using var pair = pipeline.Generate(Small("a boat") with { ImagesPerPrompt = 2, Seeds = new long[] { 40, 41 } });
        using var again = pipeline.Generate(Small("a boat") with { ImagesPerPrompt = 2, Seeds = new long[] { 40, 41 } });
        using var alone = pipeline.Generate(Small("a boat") with { Seed = 41 });

        Assert.Equal(new long[] { 2, 3, 64, 64 }, pair.Images.shape);
        TensorAssert.Equal(pair.Images, again.Images, "PixArtPipelineTests#1");
        Assert.True((pair.Images[0] - pair.Images[1]).abs().max().item<float>() > 0.01f, "different seeds must give different images");
        // Image 1 of the batch was seeded 41, like the single image: the same up to batched arithmetic.
        TensorAssert.AllClose(pair.Images[1], alone.Images[0], 1e-4, 1e-4, "per-image seed");
        Assert.Equal(new long[] { 40, 41 }, pair.Items.Select(i => i.Seed));
        Assert.All(pair.Items, i => Assert.Equal("a boat", i.Prompt));
        Assert.True(pair.Images.min().item<float>() >= 0 && pair.Images.max().item<float>() <= 1, "images are clamped to [0, 1]");
    }

    [Fact]
    public void PromptsAreLowerCasedAndStrippedAndTheNegativePromptMatters()
    {
        using var pipeline = LoadTiny();
        using var a = pipeline.Generate(Small("  A Boat \n"));
        using var b = pipeline.Generate(Small("a boat"));
        using var c = pipeline.Generate(Small("a boat") with { NegativePrompt = "fog" });
        using var d = pipeline.Generate(Small("a train"));
        TensorAssert.Equal(a.Images, b.Images, "PixArtPipelineTests#2");
        Assert.True((b.Images - c.Images).abs().max().item<float>() > 1e-3f, "the negative prompt is the unconditional branch");
        Assert.True((b.Images - d.Images).abs().max().item<float>() > 1e-3f, "the prompt conditions the image");
    }

    [Fact]
    public void TextEncoderIsReleasedAfterEncodingUnlessKept()
    {
        using var pipeline = LoadTiny();
        using (var e = pipeline.EncodePrompts(new[] { "one", "two" }))
        {
            Assert.Equal(new long[] { 2, pipeline.MaxSequenceLength, 32 }, e.Embeddings.shape);
            Assert.Equal(TinyModels.Variant.CaptionTokens, pipeline.MaxSequenceLength);
        }
        Assert.False(pipeline.TextEncoderLoaded);

        using var keeping = LoadTiny(new PipelineLoadOptions { KeepTextEncoder = true, MaxSequenceLength = 12 });
        using (var e = keeping.EncodePrompts(new[] { "one" })) Assert.Equal(12, e.Length);
        Assert.True(keeping.TextEncoderLoaded);
        keeping.ReleaseTextEncoder();
        Assert.False(keeping.TextEncoderLoaded);
    }

    [Fact]
    public void EmbeddingsGiveTheSameImageAsPrompts()
    {
        using var pipeline = LoadTiny();
        using var features = pipeline.EncodePrompts(new[] { "a boat", "" });
        using var prompt = features.Select(new long[] { 0 });
        using var negative = features.Select(new long[] { 1 });
        using var fromText = pipeline.Generate(Small("a boat"));
        using var fromFeatures = pipeline.Generate(Small() with { PromptEmbeddings = prompt, NegativeEmbeddings = negative });
        TensorAssert.AllClose(fromFeatures.Images, fromText.Images, 1e-5, 1e-5, "embeddings path");
    }

    [Fact]
    public void BinningGeneratesAtTheBinAndResizesBack()
    {
        using var pipeline = LoadTiny();
        using var result = pipeline.Generate(Small("a road") with { Width = 1000, Height = 600, UseResolutionBinning = true, Steps = 1 });
        Assert.Equal(new GenerationSize(1000, 600, 320, 192), result.Size);
        Assert.Equal(new long[] { 1, 3, 600, 1000 }, result.Images.shape);
    }

    [Fact]
    public void GuidanceScaleOneRunsOnlyTheConditionalBranch()
    {
        using var pipeline = LoadTiny();
        using var features = pipeline.EncodePrompts(new[] { "a boat", "" });
        using var prompt = features.Select(new long[] { 0 });
        using var negative = features.Select(new long[] { 1 });
        using var noise = randn(1, 4, 8, 8, generator: new Generator(1));
        var rows = new List<long>();
        foreach (var (scale, expectedRows) in new[] { (1.0, 1L), (4.5, 2L) })
        {
            rows.Clear();
            var sampling = pipeline.ChooseSampling(null, 2, scale);
            using var _ = pipeline.Denoise(prompt, negative, noise, sampling, onModelOutput: o => rows.Add(o.shape[0]));
            Assert.Equal(new[] { expectedRows, expectedRows }, rows);
        }
    }

    [Fact]
    public void SamplingDefaultsComeFromTheSchedulerConfigAndRegistry()
    {
        using var pipeline = LoadTiny();
        Assert.Equal(new SamplingChoice("dpm-solver", 20, 4.5), pipeline.ChooseSampling(null, null, null));
        Assert.Equal(100, pipeline.ChooseSampling("iddpm", null, null).Steps);
        Assert.Equal(25, pipeline.ChooseSampling("sa-solver", null, null).Steps);
        Assert.Equal("dpm-solver", pipeline.ChooseSampling("DPM", 7, 2).Sampler);
        var e = Assert.Throws<ArgumentException>(() => pipeline.ChooseSampling("magic", null, null));
        Assert.Contains("euler", e.Message);
    }

    [Theory]
    [InlineData("ddim")]
    [InlineData("euler")]
    [InlineData("sa-solver")]
    [InlineData("iddpm")]
    [InlineData("ddpm")]
    public void EverySamplerRunsAndIsDeterministic(string sampler)
    {
        using var pipeline = LoadTiny();
        using var a = pipeline.Generate(Small("a boat") with { Sampler = sampler, Steps = 3 });
        using var b = pipeline.Generate(Small("a boat") with { Sampler = sampler, Steps = 3 });
        TensorAssert.Equal(a.Images, b.Images, "PixArtPipelineTests#3");
        Assert.False(a.Images.isnan().any().item<bool>());
    }

    [Fact]
    public void BFloat16RunsCloseToFloat32()
    {
        using var fp32 = LoadTiny();
        using var bf16 = LoadTiny(new PipelineLoadOptions { DType = ScalarType.BFloat16 });
        using var a = fp32.Generate(Small("a boat"));
        using var b = bf16.Generate(Small("a boat"));
        Assert.Equal(ScalarType.Float32, b.Images.dtype);
        double diff = (a.Images - b.Images).abs().mean().item<float>();
        Assert.True(diff < 0.05, $"bf16 mean difference {diff}");
    }

    [Fact]
    public void MicroConditionsAreTheGeneratedHeightWidthAndRatio()
    {
        // An α-1024-MS-shaped tiny transformer (micro-conditions on); the denoiser must feed what diffusers'
        // PixArtAlphaPipeline feeds: resolution [[height, width]] and aspect_ratio [[height / width]] per row.
        var config = TinyModels.Variant.TransformerConfig with { AttentionHeadDim = 24, CrossAttentionDim = 48, UseAdditionalConditions = true };
        using var model = new PixArtTransformer2DModel(config);
        model.eval();
        using var g = new Generator(2);
        using var prompts = new PromptEmbeddings(randn(new long[] { 1, 5, 32 }, generator: g), ones(1, 5, dtype: int64));
        using var latents = randn(new long[] { 1, 4, 6, 10 }, generator: g);
        using var t = tensor(new float[] { 500 });
        using var denoiser = new TransformerDenoiser(model, prompts, null, new MicroConditions(Height: 48, Width: 80));
        using var ours = denoiser.Function(latents, t);
        using var noGrad = no_grad();
        using var reference = model.forward(latents, prompts.Embeddings, t, prompts.Mask,
            tensor(new float[,] { { 48, 80 } }), tensor(new float[,] { { 48f / 80f } }));
        TensorAssert.Equal(ours, reference, "PixArtPipelineTests#4");
        using var swapped = model.forward(latents, prompts.Embeddings, t, prompts.Mask,
            tensor(new float[,] { { 80, 48 } }), tensor(new float[,] { { 80f / 48f } }));
        Assert.True((ours - swapped).abs().max().item<float>() > 1e-6f, "the conditions must reach the model");
    }

    [Fact]
    public void LoadsALocalPipelineFolderAndABareTransformerWithComponentsFrom()
    {
        using var fromFolder = PixArtPipeline.Load(InferenceFixtures.TinyFolder, new PipelineLoadOptions { TinyModelsRoot = InferenceFixtures.ModelsRoot });
        using var fromRegistry = LoadTiny();
        using var a = fromFolder.Generate(Small("a boat"));
        using var b = fromRegistry.Generate(Small("a boat"));
        TensorAssert.Equal(a.Images, b.Images, "PixArtPipelineTests#5");

        // A bare transformer folder: the tiny architecture identifies the variant, whose components are local.
        using var bare = PixArtPipeline.Load(Path.Combine(InferenceFixtures.TinyFolder, "transformer"),
            new PipelineLoadOptions { ComponentsFrom = "tiny", TinyModelsRoot = InferenceFixtures.ModelsRoot });
        using var c = bare.Generate(Small("a boat"));
        TensorAssert.Equal(a.Images, c.Images, "PixArtPipelineTests#6");
    }

    [Fact]
    public void AParityFolderWithoutTextEncoderLoadsAndSaysWhatIsMissing()
    {
        using var pipeline = PixArtPipeline.Load(TestPaths.Fixture("parity", "pipeline-sigma"));
        Assert.Null(pipeline.BinningTable);
        var e = Assert.Throws<InvalidOperationException>(() => pipeline.EncodePrompts(new[] { "x" }));
        Assert.Contains("no text encoder", e.Message);
        var binning = Assert.Throws<InvalidOperationException>(() => pipeline.PlanSize(64, 64, useResolutionBinning: true));
        Assert.Contains("use_resolution_binning", binning.Message);
    }

    [Fact]
    public void FromModulesRestoresTrainingModeAndKeepsOwnership()
    {
        string folder = InferenceFixtures.TinyFolder;
        using var transformer = PixArtTransformer2DModel.FromPretrained(folder);
        using var vae = AutoencoderKL.Load(folder);
        var scheduler = PixArtLora.Diffusion.SchedulerConfig.Load(folder);
        transformer.train();
        using (var pipeline = PixArtPipeline.FromModules(transformer, vae, scheduler, new PipelineModulesOptions
               {
                   Variant = TinyModels.Variant,
                   TextEncoder = () => T5PromptEncoder.Load(Path.Combine(folder, "text_encoder"), Path.Combine(folder, "tokenizer"),
                       new T5PromptEncoderOptions { MaxLength = TinyModels.Variant.CaptionTokens }),
               }))
        {
            using var result = pipeline.Generate(Small("a boat"));
            Assert.Equal(1, result.Count);
            Assert.True(transformer.training);
        }
        // Not owned: still usable after the pipeline is gone.
        Assert.Equal(ScalarType.Float32, transformer.parameters().First().dtype);
        Assert.False(vae.Config.LatentChannels == 0);
    }

    [Fact]
    public void LoraScalesCanChangeBetweenGenerations()
    {
        string lora = InferenceFixtures.WriteLora(Path.Combine(TestPaths.NewTempDir("pipe-lora"), "style.safetensors"));
        using var plain = LoadTiny();
        using var adapted = LoadTiny(new PipelineLoadOptions { Loras = new[] { new LoraSpec(lora, 1.0) } });
        using var without = plain.Generate(Small("a boat"));
        using var with = adapted.Generate(Small("a boat"));
        Assert.True((with.Images - without.Images).abs().max().item<float>() > 0.02f, "the LoRA changes the image");

        adapted.SetLoraScale(0, 0);
        using var off = adapted.Generate(Small("a boat"));
        TensorAssert.Equal(off.Images, without.Images, "scale 0 is the base model");
        Assert.Equal(0, adapted.Loras[0].Scale);
        adapted.SetLoraScale(0, 1);
        using var on = adapted.Generate(Small("a boat"));
        TensorAssert.Equal(on.Images, with.Images, "back to scale 1");
        Assert.Throws<ArgumentOutOfRangeException>(() => adapted.SetLoraScale(1, 1));

        var parameters = GenerationMetadata.Describe(with, 0, "tiny", "", adapted.Loras, adapted.MaxSequenceLength);
        Assert.Equal("a boat", parameters.Prompt);
        Assert.Equal(3, parameters.Seed);
        Assert.Equal(new PixArtLora.Data.Images.LoraReference("style", 1), Assert.Single(parameters.Loras));
        var png = GenerationMetadata.EncodePng(with, 0, parameters);
        var text = PixArtLora.Data.Images.PngTextChunks.Read(png).Single(e => e.Keyword == "parameters").Text;
        Assert.Equal(parameters.Loras, PixArtLora.Data.Images.GenerationParameters.Parse(text).Loras);
    }
}
