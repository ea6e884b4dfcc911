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

    [Fact]
    public void WithoutGradModeItBuildsNoGraph()
    {
        using var scope = NewDisposeScope();
        var (q, k, v, _) = Inputs(10, false, float32, seed: 4);
        using var noGrad = no_grad();
        var output = ChunkedAttention.Apply(q.requires_grad_(true), k, v);
        Assert.False(output.requires_grad);
    }
}
