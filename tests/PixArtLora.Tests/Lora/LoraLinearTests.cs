using PixArtLora.Lora;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

public class LoraLinearTests
{
    [Fact]
    public void Forward_is_base_plus_scaled_BA_computed_independently_in_float64()
    {
        using var scope = NewDisposeScope();
        var baseLayer = nn.Linear(6, 4);
        using var layer = new LoraLinear(baseLayer);
        var down = randn(3, 6);
        var up = randn(4, 3);
        layer.SetAdapter("a", down, up, alpha: 6); // scale 6 / 3 = 2
        var x = randn(5, 6);

        var y = layer.forward(x);

        var x64 = x.to(float64);
        var expected = x64.matmul(baseLayer.weight.to(float64).t()) + baseLayer.bias!.to(float64)
                       + 2.0 * x64.matmul(down.to(float64).t()).matmul(up.to(float64).t());
        TensorAssert.AllClose(y, expected, 1e-5, 1e-5, "LoraLinear.forward");
    }

    [Fact]
    public void RsLora_scales_by_alpha_over_sqrt_rank_and_strength_multiplies()
    {
        using var scope = NewDisposeScope();
        var baseLayer = nn.Linear(6, 4);
        using var layer = new LoraLinear(baseLayer);
        layer.SetAdapter("rs", randn(4, 6), randn(4, 4), alpha: 8, useRsLora: true);
        Assert.Equal(8 / Math.Sqrt(4), layer.EffectiveScale("rs"), 12);
        layer.SetStrength("rs", 0.5);
        Assert.Equal(0.5 * 8 / Math.Sqrt(4), layer.EffectiveScale("rs"), 12);

        var x = randn(2, 6);
        var d = layer.Delta(x, float32);
        var (a, b) = layer.Factors("rs");
        var expected = x.matmul(a.weight.t()).matmul(b.weight.t()) * (0.5 * 8 / 2.0);
        TensorAssert.AllClose(d, expected, 1e-5, 1e-5, "rsLoRA delta");
    }

    [Fact]
    public void New_adapter_has_zero_B_and_A_drawn_like_peft()
    {
        using var scope = NewDisposeScope();
        using var layer = new LoraLinear(nn.Linear(400, 300));
        using var g = new Generator(5);
        layer.AddAdapter("k", new LoraConfig { Rank = 64, Alpha = 64 }, generator: g);
        layer.AddAdapter("g", new LoraConfig { Rank = 64, Alpha = 64, Init = LoraInit.Gaussian }, generator: g);

        var (ka, kb) = layer.Factors("k");
        Assert.Equal(0, kb.weight.abs().max().item<float>());
        // Kaiming-uniform with a = √5: U(−1/√in, 1/√in), standard deviation 1/√(3·in).
        double bound = 1 / Math.Sqrt(400);
        Assert.True(ka.weight.abs().max().item<float>() <= bound + 1e-7);
        Assert.InRange(ka.weight.std().item<float>(), 0.95 * bound / Math.Sqrt(3), 1.05 * bound / Math.Sqrt(3));

        var (ga, gb) = layer.Factors("g");
        Assert.Equal(0, gb.weight.abs().max().item<float>());
        Assert.InRange(ga.weight.std().item<float>(), 0.95 / 64, 1.05 / 64); // N(0, (1/r)²)
    }

    [Fact]
    public void Same_seed_gives_the_same_adapter()
    {
        using var scope = NewDisposeScope();
        var base1 = nn.Linear(8, 8);
        using var l1 = new LoraLinear(base1);
        using var l2 = new LoraLinear(base1);
        using (var g = new Generator(42)) l1.AddAdapter("a", new LoraConfig { Rank = 4 }, generator: g);
        using (var g = new Generator(42)) l2.AddAdapter("a", new LoraConfig { Rank = 4 }, generator: g);
        Assert.True(LoraTestHelpers.BitEqual(l1.Factors("a").A.weight, l2.Factors("a").A.weight));
    }

    [Fact]
    public void Bf16_base_with_fp32_adapters_trains_without_mixing_dtypes()
    {
        // A mixed-dtype matmul aborts the TorchSharp process; reaching the asserts at all is half the test.
        using var scope = NewDisposeScope();
        var baseLayer = nn.Linear(16, 8);
        baseLayer.to(bfloat16);
        baseLayer.weight.requires_grad = false;
        baseLayer.bias!.requires_grad = false;
        using var layer = new LoraLinear(baseLayer);
        layer.SetAdapter("a", randn(4, 16), randn(8, 4) * 0.1, alpha: 4);
        var before = baseLayer.weight.detach().clone();

        var x = randn(3, 16).to(bfloat16);
        var y = layer.forward(x);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        // fp32 activations into the bf16 base are cast at the boundary too (F.linear would throw, a matmul abort).
        Assert.Equal(ScalarType.BFloat16, layer.forward(randn(3, 16)).dtype);
        y.to(float32).square().sum().backward();

        var (a, b) = layer.Factors("a");
        Assert.Equal(ScalarType.Float32, a.weight.dtype);
        Assert.NotNull(a.weight.grad);
        Assert.Equal(ScalarType.Float32, a.weight.grad!.dtype);
        Assert.True(b.weight.grad!.abs().sum().item<float>() > 0);
        Assert.True(LoraTestHelpers.BitEqual(baseLayer.weight, before));
    }

    [Fact]
    public void Mismatched_factors_are_refused_with_the_expected_shapes()
    {
        using var scope = NewDisposeScope();
        using var layer = new LoraLinear(nn.Linear(6, 4));
        var e = Assert.Throws<ArgumentException>(() => layer.SetAdapter("a", randn(2, 5), randn(4, 2), 2));
        Assert.Contains("A [r, 6], B [4, r]", e.Message);
    }
}
