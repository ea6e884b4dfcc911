using PixArtLora.Diffusion;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using PixArtLora.Tests.Inference;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Registry;

/// <summary>The offline tiny pipeline: complete, loadable by every loader, deterministic, safe to create concurrently.</summary>
public class TinyModelsTests
{
    [Fact]
    public void WritesACompleteDiffusersPipelineThatEveryLoaderReads()
    {
        string folder = InferenceFixtures.TinyFolder;
        foreach (var sub in new[] { "transformer", "text_encoder", "tokenizer", "vae", "scheduler" })
            Assert.True(Directory.Exists(Path.Combine(folder, sub)), sub);
        Assert.True(File.Exists(Path.Combine(folder, "model_index.json")));

        using var transformer = PixArtTransformer2DModel.FromPretrained(folder);
        Assert.Equal(TinyModels.Variant.TransformerConfig.InnerDim, transformer.Config.InnerDim);
        using var vae = AutoencoderKL.Load(folder);
        Assert.Equal(8, vae.Config.SpatialScaleFactor);
        Assert.Equal(4, vae.Config.LatentChannels);
        Assert.Equal(TinyModels.Variant.Vae.ScalingFactor, vae.Config.ScalingFactor);
        var scheduler = SchedulerConfig.Load(folder);
        Assert.Equal("DPMSolverMultistepScheduler", scheduler.ClassName);
        Assert.Equal("dpmsolver++", scheduler.AlgorithmType);

        using var encoder = T5PromptEncoder.Load(Path.Combine(folder, "text_encoder"), Path.Combine(folder, "tokenizer"),
            new T5PromptEncoderOptions { MaxLength = TinyModels.Variant.CaptionTokens });
        var (embeddings, mask) = encoder.Encode(new[] { "Hello world" });
        // The real T5 vocabulary: "Hello world" is [8774, 296] + </s> (source.json of the fixture).
        Assert.Equal(new long[] { 1, 32, 32 }, embeddings.shape);
        Assert.Equal(3, mask.sum().item<long>());
        Assert.Equal(new[] { 8774, 296 }, encoder.Tokenizer.Tokenize("Hello world"));
        Assert.False(embeddings.isnan().any().item<bool>());
    }

    [Fact]
    public void GenerationIsByteForByteDeterministic()
    {
        string a = TestPaths.NewTempDir("tiny-a"), b = TestPaths.NewTempDir("tiny-b");
        TinyModels.WritePipeline(a);
        TinyModels.WritePipeline(b);
        var files = Directory.GetFiles(a, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(files, Directory.GetFiles(b, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(b, f)).Order(StringComparer.Ordinal));
        foreach (var f in files) Assert.True(File.ReadAllBytes(Path.Combine(a, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, f))), f);
        Assert.Contains(Path.Combine("vae", "diffusion_pytorch_model.safetensors"), files);
        Assert.Contains(Path.Combine("text_encoder", "model.safetensors"), files);
        Assert.Contains(Path.Combine("tokenizer", "spiece.model"), files);
    }

    [Fact]
    public void WeightsAreSeededAndNonDegenerate()
    {
        using var transformer = PixArtTransformer2DModel.FromPretrained(InferenceFixtures.TinyFolder);
        foreach (var (name, p) in transformer.named_parameters())
        {
            Assert.True(p.abs().max().item<float>() > 0, $"{name} is all zero");
            Assert.False(p.isnan().any().item<bool>(), name);
        }
        var blocks = transformer.named_parameters().Where(p => p.name.EndsWith("attn1.to_q.weight")).Select(p => p.parameter).ToList();
        Assert.Equal(2, blocks.Count);
        Assert.True((blocks[0] - blocks[1]).abs().max().item<float>() > 0.01f, "each tensor draws from its own seed");
    }

    [Fact]
    public void ConcurrentFirstUsesProduceOneCompleteFolder()
    {
        string root = TestPaths.NewTempDir("tiny-race");
        var folders = Enumerable.Range(0, 3).AsParallel().Select(_ => TinyModels.EnsurePipeline(root)).ToList();
        Assert.Single(folders.Distinct());
        Assert.Single(Directory.GetDirectories(root));
        Assert.True(File.Exists(Path.Combine(folders[0], "model_index.json")));
    }

    [Fact]
    public void HomeFollowsTheEnvironment()
    {
        Assert.Equal(Path.Combine("/data/px", "models"), TinyModels.DefaultModelsRoot(n => n == "PIXARTLORA_HOME" ? "/data/px" : null));
        Assert.Equal(Path.Combine("/xdg", "pixartlora", "models"), TinyModels.DefaultModelsRoot(n => n == "XDG_CACHE_HOME" ? "/xdg" : null));
    }

    [Fact]
    public void EmbedsTheRealT5SentencePieceModel()
    {
        var bytes = TinyModels.T5SentencePieceModel();
        Assert.Equal(File.ReadAllBytes(TestPaths.Fixture("tokenizer", "t5", "spiece.model")), bytes);
    }
}
