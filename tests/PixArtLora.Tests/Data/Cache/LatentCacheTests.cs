using PixArtLora.Data.Cache;
using PixArtLora.Models.Vae;
using PixArtLora.Tests.Models.Vae;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Data.Cache;

public class LatentCacheTests
{
    static readonly LatentCacheKey Key = new("3f2a9c", TargetWidth: 24, TargetHeight: 16, CropX: 4, CropY: 0, CropWidth: 24, CropHeight: 16);

    static AutoencoderKL SmallVae(int seed, ScalarType? dtype = null) => VaeTestModels.Seeded(VaeTestModels.Small(), (ulong)seed, dtype);

    static Tensor Pixels(int seed) => rand(new long[] { 3, 16, 24 }, generator: new Generator((ulong)seed)) * 2 - 1;

    [Fact]
    public void StoredPosteriorRoundTripsExactlyAndHitsSkipEncoding()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("latents");
        using var vae = SmallVae(1);
        var pixels = Pixels(10);
        using var direct = vae.Encode(pixels.unsqueeze(0));
        int produced = 0;
        using (var cache = LatentCache.Open(dir, vae))
        {
            var miss = cache.GetOrEncode(Key, () => { produced++; return pixels; });
            TensorAssert.Equal(miss.Mean, direct.Mean, "mean on miss");
            Assert.Equal(1, cache.EncodedCount);
        }
        using (var cache = LatentCache.Open(dir, vae))
        {
            var hit = cache.GetOrEncode(Key, () => { produced++; return pixels; });
            Assert.Equal(1, produced);
            Assert.Equal(0, cache.EncodedCount);
            Assert.Equal(new long[] { 1, 4, 8, 12 }, hit.Mean.shape);
            TensorAssert.Equal(hit.Mean, direct.Mean, "mean");
            TensorAssert.Equal(hit.Std, direct.Std, "std");
        }
    }

    [Fact]
    public void SamplingACachedPosteriorEqualsSamplingOnTheFly()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("latents");
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var vae = SmallVae(2, dtype);
            var pixels = Pixels(11);
            using (var cache = LatentCache.Open(dir, vae)) cache.GetOrEncode(Key, () => pixels);
            using var reopened = LatentCache.Open(dir, vae);
            Assert.True(reopened.TryGet(Key, out var cached));
            Assert.Equal(dtype, cached.Mean.dtype);

            var onTheFly = vae.Encode(pixels.unsqueeze(0)).Sample(new Generator(42));
            var fromCache = LatentCache.Sample(cached, new Generator(42));
            TensorAssert.Equal(fromCache, onTheFly, $"latent sample ({dtype})");
            // a different generator state gives a different latent: the cache stores the distribution, not one draw
            Assert.True((LatentCache.Sample(cached, new Generator(43)) - onTheFly).abs().max().to(float32).item<float>() > 1e-3f);
        }
    }

    [Fact]
    public void ChangingTheImageSizeCropFlipOrVaeMissesTheCache()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("latents");
        using var vae = SmallVae(3);
        using (var cache = LatentCache.Open(dir, vae))
        {
            cache.GetOrEncode(Key, () => Pixels(12));
            Assert.True(cache.Contains(Key));
            Assert.False(cache.Contains(Key with { ImageHash = "3f2a9d" }));
            Assert.False(cache.Contains(Key with { TargetWidth = 32, CropWidth = 32 }));
            Assert.False(cache.Contains(Key with { CropX = 0 }));
            Assert.False(cache.Contains(Key.WithFlip(true)));
            Assert.False(cache.Contains(Key with { Preprocessing = "lanczos" }));
        }
        using var otherWeights = SmallVae(4);
        using (var cache = LatentCache.Open(dir, otherWeights)) Assert.False(cache.Contains(Key));
        using var otherDType = SmallVae(3, ScalarType.BFloat16);
        using (var cache = LatentCache.Open(dir, otherDType)) Assert.False(cache.Contains(Key));
        using var otherConfig = new AutoencoderKL(VaeTestModels.Small() with { ScalingFactor = 0.5 });
        using (var cache = LatentCache.Open(dir, otherConfig)) Assert.False(cache.Contains(Key));
        using var sameAgain = SmallVae(3);
        using (var cache = LatentCache.Open(dir, sameAgain)) Assert.True(cache.Contains(Key));
    }

    [Fact]
    public void FlippedVariantIsTheMirroredImagesPosteriorFromOnePixelLoad()
    {
        using var scope = NewDisposeScope();
        using var vae = SmallVae(5);
        var pixels = Pixels(13);
        int produced = 0;
        using var cache = LatentCache.Open(TestPaths.NewTempDir("latents"), vae);
        var (plain, flipped) = cache.GetOrEncodeWithFlip(Key, () => { produced++; return pixels; }, withFlip: true);
        Assert.Equal(1, produced);
        TensorAssert.Equal(plain.Mean, vae.Encode(pixels.unsqueeze(0)).Mean, "plain");
        TensorAssert.Equal(flipped!.Mean, vae.Encode(pixels.flip(-1).unsqueeze(0)).Mean, "flipped");
        Assert.True(cache.Contains(Key.WithFlip(true)));
        var (_, none) = cache.GetOrEncodeWithFlip(Key, () => { produced++; return pixels; }, withFlip: false);
        Assert.Null(none);
        Assert.Equal(1, produced);
    }

    [Fact]
    public void PixelsThatDisagreeWithTheKeyAreRejected()
    {
        using var scope = NewDisposeScope();
        using var vae = SmallVae(6);
        using var cache = LatentCache.Open(TestPaths.NewTempDir("latents"), vae);
        var ex = Assert.Throws<ArgumentException>(() => cache.GetOrEncode(Key, () => zeros(3, 16, 16)));
        Assert.Contains("16x16", ex.Message);
        Assert.Contains("24x16", ex.Message);
    }

    [Fact]
    public void PruneKeepsOnlyTheNamedImages()
    {
        using var scope = NewDisposeScope();
        using var vae = SmallVae(7);
        using var cache = LatentCache.Open(TestPaths.NewTempDir("latents"), vae);
        var other = Key with { ImageHash = "77" };
        cache.GetOrEncode(Key, () => Pixels(1));
        cache.GetOrEncode(other, () => Pixels(2));
        Assert.Equal(1, cache.Prune(new[] { other }));
        Assert.False(cache.Contains(Key));
        Assert.True(cache.Contains(other));
    }
}
