using PixArtLora.IO;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

public class TransformerLoadingTests
{
    [Fact]
    public void LoadsFromAPipelineFolder()
    {
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "pipeline-sigma"));
        Assert.Equal(PixArtTransformerConfig.Load(TestPaths.Fixture("parity", "pipeline-sigma", "transformer")), model.Config);
    }

    [Fact]
    public void SavePretrainedRoundTripsConfigAndWeights()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new PixArtTransformer2DModel(ModelRegistry.Get("tiny").TransformerConfig);
        model.eval();
        var dir = TestPaths.NewTempDir("save");
        model.SavePretrained(dir);
        Assert.True(File.Exists(Path.Combine(dir, "config.json")));
        Assert.True(File.Exists(Path.Combine(dir, "diffusion_pytorch_model.safetensors")));

        using var loaded = PixArtTransformer2DModel.FromPretrained(dir);
        loaded.eval();
        var inputs = TransformerInputs.For(model.Config, height: 16, width: 8);
        using var _ = no_grad();
        TensorAssert.Equal(inputs.Run(loaded), inputs.Run(model), "reloaded output");
    }

    [Fact]
    public void SavesShardedAboveTheShardSize()
    {
        using var scope = NewDisposeScope();
        using var model = new PixArtTransformer2DModel(ModelRegistry.Get("tiny").TransformerConfig);
        var dir = TestPaths.NewTempDir("sharded");
        model.SavePretrained(dir, maxShardBytes: 50_000);
        Assert.True(File.Exists(Path.Combine(dir, "diffusion_pytorch_model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(dir, "*.safetensors").Length > 1);
        using var loaded = PixArtTransformer2DModel.FromPretrained(dir);
        TensorAssert.Equal(loaded.proj_out.parameters().First(), model.proj_out.parameters().First(), "proj_out.weight");
    }

    [Fact]
    public void ShapeMismatchNamesTheKeyAndBothShapes()
    {
        var dir = TestPaths.NewTempDir("mismatch");
        var source = TestPaths.Fixture("parity", "transformer-sigma", "transformer");
        File.Copy(Path.Combine(source, "diffusion_pytorch_model.safetensors"), Path.Combine(dir, "diffusion_pytorch_model.safetensors"));
        // Same model but 4 heads of 4: every shape agrees except none … so change the caption width instead.
        (PixArtTransformerConfig.Load(source) with { CaptionChannels = 48 }).Save(Path.Combine(dir, "config.json"));
        var e = Assert.Throws<SafetensorsFormatException>(() => PixArtTransformer2DModel.FromPretrained(dir));
        Assert.Contains("caption_projection.linear_1.weight", e.Message);
        Assert.Contains("[16, 32]", e.Message);
        Assert.Contains("[16, 48]", e.Message);
    }

    [Fact]
    public void MissingMicroConditionsAreAClearError()
    {
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "transformer-alpha-ms", "transformer"));
        var i = TransformerInputs.For(model.Config);
        var e = Assert.Throws<ArgumentException>(() => model.forward(i.Latents, i.Captions, i.Timestep, i.Mask));
        Assert.Contains("aspect_ratio", e.Message);
    }

    [Fact]
    public void WrongLatentShapeIsAClearError()
    {
        using var scope = NewDisposeScope();
        using var model = new PixArtTransformer2DModel(ModelRegistry.Get("tiny").TransformerConfig);
        var i = TransformerInputs.For(model.Config);
        var e = Assert.Throws<ArgumentException>(() => model.forward(randn(2, 4, 9, 8), i.Captions, i.Timestep));
        Assert.Contains("patch_size", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.forward(i.Latents, randn(2, 7, 31), i.Timestep));
        Assert.Contains("encoder_hidden_states", e.Message);
    }

    [Fact]
    public void PaddingTokensAreIgnored()
    {
        // Changing the caption features under masked positions must not change the output.
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "transformer-sigma", "transformer"));
        model.eval();
        var i = TransformerInputs.For(model.Config);
        var changed = i.Captions.clone();
        changed[1].narrow(0, changed.shape[1] - 3, 3).add_(5.0);
        using var _ = no_grad();
        var a = model.forward(i.Latents, i.Captions, i.Timestep, i.Mask);
        var b = model.forward(i.Latents, changed, i.Timestep, i.Mask);
        TensorAssert.AllClose(b, a, 1e-5, 1e-5, "masked tokens changed");
        var unmasked = model.forward(i.Latents, changed, i.Timestep);
        Assert.True((unmasked - a).abs().max().item<float>() > 1e-3);
    }
}
