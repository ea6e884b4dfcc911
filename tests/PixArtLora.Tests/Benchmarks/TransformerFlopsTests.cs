using PixArtLora.Benchmarks;
using PixArtLora.Models.Common;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Benchmarks;

/// <summary>The analytic FLOP count against counts done by hand, and against the layers the model really has.</summary>
public class TransformerFlopsTests
{
    // The tiny variant: D = 32 (2 heads × 16), 2 blocks, cross_attention_dim 32, captions 32-d, patch 2, 4 → 8 channels.
    static readonly PixArtTransformerConfig Tiny = ModelRegistry.Get("tiny").TransformerConfig;

    // An 8×8 latent is N = 16 tokens; L = 8 caption tokens; batch 1. Hand counts (2 FLOPs per multiply-add):
    const double PatchEmbed = 2 * 16 * (4 * 2 * 2) * 32;                // 16 384
    const double TimestepMlp = 2 * 256 * 32 + 2 * 32 * 32;              // 18 432 (linear_1, linear_2)
    const double AdaLn = 2 * 32 * (6 * 32);                              // 12 288
    const double Caption = 2 * 8 * 32 * 32 + 2 * 8 * 32 * 32;           // 32 768 (linear_1, linear_2)
    const double SelfProjections = 4 * (2 * 16 * 32 * 32);              // 131 072 (q, k, v, out)
    const double SelfProducts = 2 * (2 * 16 * 16 * 32);                 // 32 768 (QKᵀ, AV)
    const double CrossQueryOut = 2 * (2 * 16 * 32 * 32);                // 65 536
    const double CrossKeyValue = 2 * (2 * 8 * 32 * 32);                 // 32 768
    const double CrossProducts = 2 * (2 * 16 * 8 * 32);                 // 16 384
    const double FeedForward = 2 * 16 * 32 * 128 + 2 * 16 * 128 * 32;   // 262 144
    const double ProjOut = 2 * 16 * 32 * (2 * 2 * 8);                   // 32 768
    const double Block = SelfProjections + SelfProducts + CrossQueryOut + CrossKeyValue + CrossProducts + FeedForward;
    const double Forward = PatchEmbed + TimestepMlp + AdaLn + Caption + 2 * Block + ProjOut;   // 1 193 984
    const double Products = 2 * (SelfProducts + CrossProducts);

    static FlopCount Count(BenchMode mode, bool checkpointing = false, int rank = 16) =>
        TransformerFlops.Count(Tiny, batch: 1, latentHeight: 8, latentWidth: 8, captionTokens: 8, mode, checkpointing, rank);

    [Fact]
    public void ForwardMatchesTheHandCount()
    {
        var f = Count(BenchMode.Forward);
        Assert.Equal(1_193_984, Forward);
        Assert.Equal(Forward, f.Forward);
        Assert.Equal(Forward, f.Total);
        Assert.Equal(0, f.Backward);
    }

    [Fact]
    public void FullTrainingSkipsOnlyTheInputGradientsOfLayersFedByData()
    {
        var f = Count(BenchMode.Full);
        double linears = Forward - Products;
        Assert.Equal(Forward, f.Forward);
        Assert.Equal(linears, f.WeightGradients);
        // No input gradient for the patch embedding (latents), timestep linear_1 (sinusoids), caption linear_1 (T5 features).
        Assert.Equal(linears - PatchEmbed - 2 * 256 * 32 - 2 * 8 * 32 * 32, f.InputGradients);
        Assert.Equal(2 * Products, f.AttentionBackward);
        Assert.Equal(0, f.Recompute);
        Assert.InRange(f.Total / f.Forward, 2.8, 3.0);   // ≈ 3F
    }

    [Fact]
    public void CheckpointingAddsOneForwardOfTheBlocks()
    {
        Assert.Equal(2 * Block, Count(BenchMode.Full, checkpointing: true).Recompute);
        Assert.Equal(Count(BenchMode.Full).Total + 2 * Block, Count(BenchMode.Full, checkpointing: true).Total);
        Assert.Equal(0, Count(BenchMode.Forward, checkpointing: true).Recompute);
    }

    [Fact]
    public void LoraCountsAdapterProductsAndOnlyTheGradientsAutogradNeeds()
    {
        const int r = 4;
        // Adapter products per block: A (in → r) and B (r → out) on q, k, v, out of both attentions.
        const double selfA = 2 * 16 * 32 * r, selfB = 2 * 16 * r * 32;           // each 4 096, image tokens
        const double crossKvA = 2 * 8 * 32 * r, crossKvB = 2 * 8 * r * 32;       // each 2 048, caption tokens
        const double adaptersPerBlock = 4 * (selfA + selfB) + 2 * (selfA + selfB) + 2 * (crossKvA + crossKvB);
        var f = Count(BenchMode.Lora, rank: r);
        Assert.Equal(Forward + 2 * adaptersPerBlock, f.Forward);
        Assert.Equal(2 * adaptersPerBlock, f.WeightGradients);   // only adapters train

        // Input gradients. Block 0: the self-attention projections read x straight from the frozen patch embedding
        // (no gradient yet); to_out, cross q/out and the feed-forward see adapter outputs downstream. Block 1: all but
        // the cross-attention k/v, which read the frozen caption projection. Then proj_out.
        const double linear = 2 * 16 * 32 * 32;
        double baseBlock0 = 3 * linear + FeedForward, baseBlock1 = 4 * linear + 2 * linear + FeedForward;
        double bAll = 2 * (6 * selfB + 2 * crossKvB);   // every B: its input is A's output, which has a gradient
        double aNeeded = 3 * selfA + 6 * selfA;          // A of to_out, cross q, cross out in block 0; 6 in block 1
        Assert.Equal(baseBlock0 + baseBlock1 + ProjOut + bAll + aNeeded, f.InputGradients);
        Assert.Equal(2 * Products, f.AttentionBackward);
        Assert.InRange(f.Total / f.Forward, 1.8, 2.2);   // ≈ 2F with the base frozen
    }

    [Theory]
    [InlineData("sigma-1024-ms")]
    [InlineData("alpha-1024-ms")]
    public void ForwardCountCoversEveryLayerOfTheRealModel(string id)
    {
        // Independent of the formula's structure: walk the full-size model's Linear layers (meta device, no memory)
        // and charge each with the tokens it sees; add the patch embedding (a convolution) and the attention products.
        var variant = ModelRegistry.Get(id);
        var c = variant.TransformerConfig;
        long latent = 64, n = (latent / c.PatchSize) * (latent / c.PatchSize), l = variant.CaptionTokens, batch = 2;
        using var model = new PixArtTransformer2DModel(c, META);
        double expected = 0;
        foreach (var (path, linear) in ModuleSurgery.Linears(model))
        {
            long tokens = path.StartsWith("adaln_single", StringComparison.Ordinal) ? 1
                : path.StartsWith("caption_projection", StringComparison.Ordinal) || path.Contains("attn2.to_k") || path.Contains("attn2.to_v") ? l
                : n;
            expected += 2.0 * batch * tokens * linear.in_features * linear.out_features;
        }
        var w = model.pos_embed.proj.weight!;
        expected += 2.0 * batch * n * w.shape[0] * (w.shape[1] * w.shape[2] * w.shape[3]);
        expected += c.NumLayers * batch * (4.0 * n * n * c.InnerDim + 4.0 * n * l * c.InnerDim);

        var f = TransformerFlops.Count(c, batch, latent, latent, l, BenchMode.Forward);
        Assert.Equal(expected, f.Forward, 1e-9 * expected);
    }

    [Fact]
    public void Sigma512ForwardIsAbout1Point29TeraflopPerImage()
    {
        // The figure quoted in the README and the formula's documentation.
        var c = ModelRegistry.Get("sigma-512-ms").TransformerConfig;
        var f = TransformerFlops.Count(c, 1, 64, 64, 300, BenchMode.Forward);
        Assert.InRange(f.Forward / 1e12, 1.285, 1.295);
    }
}
