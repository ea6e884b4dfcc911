using PixArtLora.Models.Vae;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Vae;

public class VaeTilingTests
{
    /// <summary>diffusers' blend_v, transcribed: row y of b becomes a[-e + y]·(1 − y/e) + b[y]·(y/e), in place.</summary>
    static Tensor ReferenceBlendV(Tensor a, Tensor b, int extent)
    {
        b = b.clone();
        int e = (int)Math.Min(Math.Min(a.shape[2], b.shape[2]), extent);
        for (int y = 0; y < e; y++)
            b[.., .., y, ..] = a[.., .., a.shape[2] - e + y, ..] * (1 - (double)y / e) + b[.., .., y, ..] * ((double)y / e);
        return b;
    }

    [Theory]
    [InlineData(8, 8, 3)]
    [InlineData(8, 5, 3)] // b shorter than the extent: diffusers clips it to min(a, b, extent)
    [InlineData(4, 8, 6)]
    public void BlendsMatchDiffusersRowByRowLoop(int aRows, int bRows, int extent)
    {
        using var scope = NewDisposeScope();
        var a = randn(1, 2, aRows, 7);
        var b = randn(1, 2, bRows, 7);
        TensorAssert.AllClose(VaeTiling.BlendVertical(a, b, extent), ReferenceBlendV(a, b, extent), 1e-6, 1e-6, "blend_v");
        var ah = a.transpose(2, 3);
        var bh = b.transpose(2, 3);
        TensorAssert.AllClose(VaeTiling.BlendHorizontal(ah, bh, extent), ReferenceBlendV(a, b, extent).transpose(2, 3), 1e-6, 1e-6, "blend_h");
    }

    [Theory]
    [InlineData(13, 9, 4, 0.25)]  // sizes that are not multiples of the stride
    [InlineData(16, 16, 8, 0.5)]
    [InlineData(7, 20, 4, 0.0)]
    public void StitchingALocalFunctionReproducesItExactly(int height, int width, int tile, double overlap)
    {
        // A function with a receptive field of one latent gives identical values in overlapping tiles, so any mistake in
        // tile positions, crops, blend weights (which must sum to one) or concatenation shows up as a difference.
        using var scope = NewDisposeScope();
        var z = randn(2, 3, height, width);
        const int scale = 2;
        Tensor Decode(Tensor t) => nn.functional.interpolate(t, scale_factor: new[] { 2.0, 2.0 }).tanh() * 3 + 1;
        Tensor Encode(Tensor t) => nn.functional.avg_pool2d(t, 2).sin();
        int stride = (int)(tile * (1 - overlap)), blend = tile - stride;

        var decoded = VaeTiling.Stitch(z, tile, stride, stride * scale, blend * scale, Decode);
        TensorAssert.AllClose(decoded, Decode(z), 1e-6, 1e-6, "tiled decode");

        var image = randn(1, 3, height * scale, width * scale);
        var encoded = VaeTiling.Stitch(image, tile * scale, stride * scale, stride, blend, Encode);
        TensorAssert.AllClose(encoded, Encode(image), 1e-6, 1e-6, "tiled encode");
    }

    [Fact]
    public void TiledVaeAgreesCloselyWithUntiledAndBlendingRemovesSeams()
    {
        // Tiled output is not identical to untiled (each tile normalises over itself and sees zero padding at its edges);
        // on a statistically uniform input the two agree closely, and far better with overlap blending than without.
        using var scope = NewDisposeScope();
        using var vae = VaeTestModels.Seeded(VaeTestModels.Small(attention: true), seed: 1);
        var image = rand(new long[] { 1, 3, 96, 96 }, generator: new Generator(2)) * 2 - 1;
        var latents = randn(new long[] { 1, 4, 48, 48 }, generator: new Generator(3));

        var mean = vae.Encode(image, VaeTiling.Off).Mean;
        var decoded = vae.Decode(latents, VaeTiling.Off);
        var blendedMean = vae.Encode(image, VaeTiling.Always(64, 0.25)).Mean;
        var blendedDecoded = vae.Decode(latents, VaeTiling.Always(64, 0.25));
        var seamMean = vae.Encode(image, VaeTiling.Always(64, 0.0)).Mean;
        var seamDecoded = vae.Decode(latents, VaeTiling.Always(64, 0.0));

        Assert.Equal(mean.shape, blendedMean.shape);
        Assert.Equal(decoded.shape, blendedDecoded.shape);
        static double MaxRel(Tensor x, Tensor reference) => ((x - reference).abs().max() / reference.abs().max()).item<float>();
        static double MeanRel(Tensor x, Tensor reference) => ((x - reference).abs().mean() / reference.std()).item<float>();

        Assert.True(MeanRel(blendedMean, mean) < 0.1, $"encode: mean error {MeanRel(blendedMean, mean):F3} of the output's std");
        Assert.True(MeanRel(blendedDecoded, decoded) < 0.15, $"decode: mean error {MeanRel(blendedDecoded, decoded):F3} of the output's std");
        Assert.True(MaxRel(blendedMean, mean) < 0.5 * MaxRel(seamMean, mean), $"encode seams: {MaxRel(blendedMean, mean):F3} vs {MaxRel(seamMean, mean):F3} unblended");
        Assert.True(MaxRel(blendedDecoded, decoded) < 0.5 * MaxRel(seamDecoded, decoded), $"decode seams: {MaxRel(blendedDecoded, decoded):F3} vs {MaxRel(seamDecoded, decoded):F3} unblended");
    }

    [Fact]
    public void OneTileCoveringTheInputIsTheUntiledResult()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        using var vae = new AutoencoderKL(VaeTestModels.Small());
        var latents = randn(1, 4, 16, 16);
        TensorAssert.Equal(vae.Decode(latents, VaeTiling.Always(32)), vae.Decode(latents, VaeTiling.Off), "single tile");
    }

    [Fact]
    public void DefaultTilesOnlyAboveThe1024Buckets()
    {
        var sdxl = VaeTestModels.SdxlVae;
        Assert.False(VaeTiling.Default.AppliesTo(1024, 1024, sdxl));
        Assert.False(VaeTiling.Default.AppliesTo(512, 2048, sdxl));   // 1:4 bucket at 1024 scale: 1M pixels
        Assert.True(VaeTiling.Default.AppliesTo(2048, 2048, sdxl));
        Assert.False(VaeTiling.Off.AppliesTo(4096, 4096, sdxl));
        Assert.True(VaeTiling.Always(256).AppliesTo(512, 256, sdxl));
        Assert.False(VaeTiling.Always(256).AppliesTo(256, 256, sdxl));
        Assert.Throws<ArgumentException>(() => VaeTiling.Always(100).TileSizeFor(sdxl)); // not a multiple of 8
    }
}
