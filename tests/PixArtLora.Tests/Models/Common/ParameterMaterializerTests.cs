using PixArtLora.Models.Common;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Common;

/// <summary>Meta-built models get real storage for every parameter, registered where forward and state_dict look.</summary>
public class ParameterMaterializerTests
{
    [Fact]
    public void EveryParameterMovesOffMetaWithItsShapeAndTheRequestedDtype()
    {
        var config = ModelRegistry.Get("tiny").TransformerConfig;
        using var reference = new PixArtTransformer2DModel(config, META);
        using var model = new PixArtTransformer2DModel(config, META);
        model.transformer_blocks[1].scale_shift_table.requires_grad = false;   // a frozen one keeps its flag
        ParameterMaterializer.Materialize(model, CPU, ScalarType.BFloat16);

        var expected = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var actual = model.named_parameters().ToList();
        Assert.Equal(expected.Keys.Order(), actual.Select(p => p.name).Order());
        foreach (var (name, p) in actual)
        {
            Assert.Equal(DeviceType.CPU, p.device_type);
            Assert.Equal(ScalarType.BFloat16, p.dtype);
            Assert.Equal(expected[name], p.shape);
        }
        Assert.False(model.transformer_blocks[1].scale_shift_table.requires_grad);
        // The fields forward reads are the registered parameters, not stale meta tensors.
        Assert.Equal(DeviceType.CPU, model.scale_shift_table.device_type);
        Assert.Same(model.named_parameters().Single(p => p.name == "scale_shift_table").parameter, model.scale_shift_table);
    }

    [Fact]
    public void FromPretrainedOfAMetaBuiltModelRunsLikeTheRandomlyInitialisedOne()
    {
        // Save a seeded model, load it through FromPretrained (meta + materialise + strict read): same outputs.
        var config = ModelRegistry.Get("tiny").TransformerConfig;
        string dir = TestPaths.NewTempDir("materialize");
        manual_seed(11);
        using var original = new PixArtTransformer2DModel(config);
        original.SavePretrained(dir);
        using var loaded = PixArtTransformer2DModel.FromPretrained(dir);
        original.eval(); loaded.eval();
        var g = new Generator(5);
        var latents = randn(new long[] { 1, 4, 8, 8 }, generator: g);
        var captions = randn(new long[] { 1, 5, 32 }, generator: g);
        using var noGrad = no_grad();
        var t = tensor(new[] { 500f });
        Assert.Equal(0f, (original.forward(latents, captions, t) - loaded.forward(latents, captions, t)).abs().max().item<float>());
    }
}
