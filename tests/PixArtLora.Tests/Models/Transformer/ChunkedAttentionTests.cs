using PixArtLora.Models.Transformer;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

/// <summary>The chunked attention kernel against libtorch's scaled_dot_product_attention: values and gradients.</summary>
public class ChunkedAttentionTests
{
    // Shapes like a PixArt block, shrunk: batch 2, 3 heads of width 8, 10 queries, 7 keys (cross-attention) or 10 (self).
    static (Tensor Q, Tensor K, Tensor V, Tensor? Mask) Inputs(long keys, bool masked, ScalarType dtype, long seed)
    {
        var g = new Generator((ulong)seed);
        // Queries as views of a [B, N, h, d] projection, as Attention passes them (non-contiguous).
        var q = (randn(new long[] { 2, 10, 3, 8 }, generator: g) * 2).to(dtype).transpose(1, 2);
        var k = (randn(new long[] { 2, keys, 3, 8 }, generator: g) * 2).to(dtype).transpose(1, 2);
        var v = randn(new long[] { 2, keys, 3, 8 }, generator: g).to(dtype).transpose(1, 2);
        Tensor? mask = null;
        if (masked)
        {
            // diffusers' additive bias: the second caption has its last 3 tokens padded.
            mask = zeros(new long[] { 2, 1, 1, keys }, dtype: dtype);
            mask[1, 0, 0, TensorIndex.Slice(keys - 3)].fill_(-10000.0);
        }
        return (q, k, v, mask);
    }

    static (Tensor Output, Tensor[] Grads) RunWithGrads(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor q, Tensor k, Tensor v, Tensor upstream)
    {
        var leaves = new[] { q, k, v }.Select(t => t.detach().clone().requires_grad_(true)).ToArray();
        var output = attention(leaves[0], leaves[1], leaves[2]);
        output.backward(new[] { upstream });
        return (output.detach(), leaves.Select(l => l.grad!.clone()).ToArray());
    }

    [Theory]
    [InlineData(7, true, 1L << 30)]   // cross-attention with padding, all heads in one group
    [InlineData(7, true, 1)]         // the same, one head per group
    [InlineData(10, false, 1600)]    // self-attention, groups of 2 heads and a last group of 1
    public void MatchesSdpaInFloat32(long keys, bool masked, long budget)
    {
        using var scope = NewDisposeScope();
        var (q, k, v, mask) = Inputs(keys, masked, float32, seed: keys);
        var upstream = randn(new long[] { 2, 3, 10, 8 }, generator: new Generator(99));
        var (expected, expectedGrads) = RunWithGrads((a, b, c) => nn.functional.scaled_dot_product_attention(a, b, c, mask), q, k, v, upstream);
        var (actual, actualGrads) = RunWithGrads((a, b, c) => ChunkedAttention.Apply(a, b, c, mask, budget), q, k, v, upstream);

        Assert.Equal(expected.shape, actual.shape);
        TensorAssert.AllClose(actual, expected, 1e-5, 1e-5, "output");
        string[] names = { "dq", "dk", "dv" };
        for (int i = 0; i < 3; i++) TensorAssert.AllClose(actualGrads[i], expectedGrads[i], 1e-5, 1e-5, names[i]);
        if (masked)
            // Padded keys get no attention, hence no gradient.
            Assert.Equal(0, actualGrads[1][1, TensorIndex.Ellipsis, TensorIndex.Slice(keys - 3), TensorIndex.Colon].abs().max().item<float>());
    }

    [Fact]
    public void Bf16StaysWithinBf16RoundingOfTheFloat64Result()
    {
        using var scope = NewDisposeScope();
        var (q, k, v, mask) = Inputs(7, true, float32, seed: 3);
        var reference = nn.functional.scaled_dot_product_attention(q.to(float64), k.to(float64), v.to(float64), mask!.to(float64));
        var output = ChunkedAttention.Apply(q.to(bfloat16), k.to(bfloat16), v.to(bfloat16), mask.to(bfloat16));
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        double worst = (output.to(float64) - reference).abs().max().item<double>();
        // Outputs are averages of N(0, 1) values; bf16 inputs and scores carry ~2^-8 relative error each.
        Assert.True(worst < 0.05, $"max |bf16 chunked - float64| = {worst}");
    }

    [Theory]
    [InlineData(7, true)]     // cross-attention with padding: rows of 7, shorter than one 16-lane vector
    [InlineData(37, false)]   // two vectors and a tail of 5
    public void KeptProbabilitiesGiveTheGradientsOfRecomputation(long keys, bool masked)
    {
        using var scope = NewDisposeScope();
        var (q, k, v, mask) = Inputs(keys, masked, bfloat16, seed: 5);
        var upstream = randn(new long[] { 2, 3, 10, 8 }, generator: new Generator(6)).to(bfloat16);
        var reference = RunWithGrads((a, b, c) => nn.functional.scaled_dot_product_attention(a.to(float64), b.to(float64), c.to(float64), mask?.to(float64)).to(bfloat16), q, k, v, upstream);

        long before = ChunkedAttention.KeptProbabilityBudgetBytes;
        try
        {
            ChunkedAttention.KeptProbabilityBudgetBytes = 0;
            var recomputed = RunWithGrads((a, b, c) => ChunkedAttention.Apply(a, b, c, mask, 1), q, k, v, upstream);
            ChunkedAttention.KeptProbabilityBudgetBytes = 1L << 30;
            using (var leaf = q.detach().requires_grad_(true))
                Assert.Equal(Bf16SoftmaxBackward.Supported, ChunkedAttention.KeepsProbabilities(leaf, k, v));
            var kept = RunWithGrads((a, b, c) => ChunkedAttention.Apply(a, b, c, mask, 1), q, k, v, upstream);

            Assert.True(kept.Output.equal(recomputed.Output).all().item<bool>(), "the forward pass does not depend on what backward gets");
            string[] names = { "dq", "dk", "dv" };
            for (int i = 0; i < 3; i++)
            {
                // Both paths compute dS in float32 from bf16 P and dP; they differ by rounding only. Against the
                // float64 result, bf16 inputs, scores and probabilities give a few percent.
                var exact = reference.Grads[i].to(float64);
                double Relative(Tensor t) => (t.to(float64) - exact).norm().item<double>() / exact.norm().item<double>();
                Assert.True(Relative(kept.Grads[i]) < 0.05, $"{names[i]}: kept vs float64, relative error {Relative(kept.Grads[i])}");
                Assert.True(Relative(kept.Grads[i]) < Relative(recomputed.Grads[i]) + 0.01,
                    $"{names[i]}: kept {Relative(kept.Grads[i])} vs recomputed {Relative(recomputed.Grads[i])} relative error");
            }
            if (masked)
                Assert.Equal(0, kept.Grads[1][1, TensorIndex.Ellipsis, TensorIndex.Slice(keys - 3), TensorIndex.Colon].abs().max().to(float32).item<float>());
        }
        finally { ChunkedAttention.KeptProbabilityBudgetBytes = before; }
    }

    [Fact]
    public void SoftmaxBackwardKernelMatchesLibtorchs()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        // Rows of 300 (Σ's caption length): 18 full vectors and a tail of 12.
        var scores = (randn(new long[] { 3, 5, 300 }, generator: g) * 3).to(bfloat16);
        var gradProbabilities = randn(new long[] { 3, 5, 300 }, generator: g).to(bfloat16);
        var leaf = scores.detach().requires_grad_(true);
        var probabilities = leaf.softmax(-1);
        var expected = autograd.grad(new[] { probabilities }, new[] { leaf }, new[] { gradProbabilities })[0];
        var actual = gradProbabilities.clone();
        if (!Bf16SoftmaxBackward.Supported)
        {
            Assert.Throws<PlatformNotSupportedException>(() => Bf16SoftmaxBackward.ApplyInPlace(probabilities.detach(), actual));
            return;
        }
        Bf16SoftmaxBackward.ApplyInPlace(probabilities.detach(), actual);
        // Same float32 formula, different summation order: at most one bf16 rounding step apart, relative to the row's scale.
        var difference = (actual.to(float32) - expected.to(float32)).abs();
        var rowScale = expected.to(float32).abs().amax(new long[] { -1 }, keepdim: true);
        Assert.True((difference <= rowScale * (1.0 / 128)).all().item<bool>(), $"max difference {difference.max().item<float>()}");
        Assert.False(actual.equal(gradProbabilities).all().item<bool>(), "the kernel wrote its result in place");
        Assert.Throws<ArgumentException>(() => Bf16SoftmaxBackward.ApplyInPlace(probabilities.detach().to(float32), actual));
    }

    [Fact]
    public void WithoutGradModeItBuildsNoGraph()
    {
        using var scope = NewDisposeScope();
        var (q, k, v, _) = Inputs(10, false, float32, seed: 4);
        using var noGrad = no_grad();
        var output = ChunkedAttention.Apply(q.requires_grad_(true), k, v);
        Assert.False(output.requires_grad);
    }

    [Fact]
    public void Bf16ModelGradientsMatchWithCheckpointingAndTrackTheFloat32Model()
    {
        // bf16 on CPU selects the chunked kernel; inside a checkpointed block its autograd function runs twice
        // (no-grad forward, then the recompute under grad). Gradients must match the plain forward's up to bf16
        // summation order, and follow the float32 (SDPA) model's up to bf16 rounding.
        using var scope = NewDisposeScope();
        string folder = TestPaths.Fixture("parity", "transformer-sigma", "transformer");
        using var half = PixArtTransformer2DModel.FromPretrained(folder, dtype: ScalarType.BFloat16);
        using var full = PixArtTransformer2DModel.FromPretrained(folder);
        var inputs = TransformerInputs.For(half.Config);
        Dictionary<string, Tensor> Gradients(PixArtTransformer2DModel model, bool checkpoint)
        {
            model.train();
            model.GradientCheckpointing = checkpoint;
            model.zero_grad();
            var output = inputs.Run(model);
            (output * output).mean().backward();
            return model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.to(float32));
        }
        // Relative to the tensor's own size, or to the largest gradient for tensors whose true gradient is ~0
        // (to_k.bias: softmax ignores a shift shared by all keys, so float32 gives ~1e-9 and bf16 rounding noise).
        double largest = 0;
        double RelativeError(Tensor actual, Tensor expected) =>
            (actual - expected).norm().item<float>() / Math.Max(expected.norm().item<float>(), 1e-3 * largest);

        var plain = Gradients(half, false);
        var checkpointed = Gradients(half, true);
        var reference = Gradients(full, false);
        largest = reference.Values.Max(g => (double)g.norm().item<float>());
        Assert.Equal(half.parameters().Count(), plain.Count);
        foreach (var (name, g) in plain)
        {
            Assert.True(RelativeError(checkpointed[name], g) < 0.02, $"{name}: checkpointed vs plain bf16 gradient, relative error {RelativeError(checkpointed[name], g)}");
            Assert.True(RelativeError(g, reference[name]) < 0.1, $"{name}: bf16 vs float32 gradient, relative error {RelativeError(g, reference[name])}");
        }
        Assert.True(plain["transformer_blocks.0.attn1.to_k.weight"].abs().sum().item<float>() > 0);
    }
}
