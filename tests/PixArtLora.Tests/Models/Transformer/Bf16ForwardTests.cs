using PixArtLora.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

/// <summary>bf16 weights with float32 inputs: explicit casts at every weight, output close to the float32 model's.</summary>
public class Bf16ForwardTests
{
    [Theory]
    [InlineData("transformer-sigma")]
    [InlineData("transformer-alpha-ms")]
    public void Bf16WeightsGiveFloat32OutputCloseToTheFloat32Model(string caseName)
    {
        using var scope = NewDisposeScope();
        string folder = TestPaths.Fixture("parity", caseName, "transformer");
        using var full = PixArtTransformer2DModel.FromPretrained(folder);
        using var half = PixArtTransformer2DModel.FromPretrained(folder, dtype: ScalarType.BFloat16);
        Assert.All(half.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        full.eval(); half.eval();
        var inputs = TransformerInputs.For(full.Config, height: 12, width: 8);

        using var _ = no_grad();
        var reference = inputs.Run(full);
        var output = inputs.Run(half);

        Assert.Equal(ScalarType.Float32, output.dtype);
        double scale = reference.abs().max().item<float>();
        double worst = (output - reference).abs().max().item<float>();
        double mean = (output - reference).abs().mean().item<float>();
        // bf16 keeps 8 bits of mantissa (relative step 2^-8 ≈ 0.004); through a few layers errors stay within a few %.
        Assert.True(worst < 0.05 * scale, $"max |bf16 - fp32| = {worst} for outputs up to {scale}");
        Assert.True(mean < 0.01 * scale, $"mean |bf16 - fp32| = {mean} for outputs up to {scale}");
        Assert.True(worst > 0, "bf16 output identical to fp32: the bf16 path was not exercised");
    }

    [Fact]
    public void Bf16InputsGiveBf16Output()
    {
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "transformer-sigma", "transformer"), dtype: ScalarType.BFloat16);
        var i = TransformerInputs.For(model.Config);
        using var _ = no_grad();
        var output = model.forward(i.Latents.to(bfloat16), i.Captions.to(bfloat16), i.Timestep, i.Mask);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        Assert.False(output.isnan().any().item<bool>());
    }
}
