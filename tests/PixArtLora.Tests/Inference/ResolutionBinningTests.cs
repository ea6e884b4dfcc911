using PixArtLora.Inference;
using PixArtLora.Tests.Parity;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Inference;

public class ResolutionBinningTests
{
    // Expected bins are diffusers' ASPECT_RATIO_*_BIN entries (pipeline_pixart_alpha.py @58eb52c), copied by hand.
    [Theory]
    [InlineData(256, 1000, 600, 320, 192)]    // "0.6": [192, 320]
    [InlineData(256, 600, 1000, 192, 320)]    // "1.67": [320, 192]
    [InlineData(256, 300, 300, 256, 256)]     // "1.0": [256, 256]
    [InlineData(1024, 1000, 600, 1280, 768)]  // "0.6": [768, 1280]
    [InlineData(1024, 1920, 1080, 1344, 768)] // 0.5625 → "0.57": [768, 1344]
    public void SnapsToTheNearestRatio(int baseSize, int width, int height, int binWidth, int binHeight)
    {
        var plan = ResolutionBinning.Plan(width, height, AspectRatioBins.ForInference(baseSize), 16);
        Assert.Equal(new GenerationSize(width, height, binWidth, binHeight), plan);
        Assert.True(plan.NeedsResize);
    }

    [Fact]
    public void WithoutBinningTheSizeMustFitThePatchGrid()
    {
        Assert.Equal(new GenerationSize(96, 64, 96, 64), ResolutionBinning.Plan(96, 64, null, 16));
        var e = Assert.Throws<ArgumentException>(() => ResolutionBinning.Plan(100, 64, null, 16));
        Assert.Contains("100x64", e.Message);
        Assert.Contains("multiples of 16", e.Message);
        Assert.Throws<ArgumentException>(() => ResolutionBinning.Plan(0, 64, null, 16));
    }

    [Fact]
    public void ResizeAndCropCoversTheRequestThenCropsTheCentre()
    {
        // A 4×6 image whose value is its column index: scaled by max(6/4, 12/6) = 2 to 8×12, then rows 1..6 kept.
        using var columns = arange(6, dtype: float32).expand(1, 1, 4, 6).contiguous();
        using var resized = ResolutionBinning.ResizeAndCrop(columns, width: 12, height: 6);
        Assert.Equal(new long[] { 1, 1, 6, 12 }, resized.shape);
        // Bilinear, align_corners=False, factor 2: output column j samples input x = (j + 0.5) / 2 - 0.5, clamped at 0 and 5.
        var expected = Enumerable.Range(0, 12).Select(j => (float)Math.Clamp((j + 0.5) / 2 - 0.5, 0, 5)).ToArray();
        for (int row = 0; row < 6; row++)
            Assert.Equal(expected, resized[0, 0, row].data<float>().ToArray());

        // Rows: value = row index; 4 rows → 8, crop starts at (8 - 6) / 2 = 1.
        using var rows = arange(4, dtype: float32).view(1, 1, 4, 1).expand(1, 1, 4, 6).contiguous();
        using var cropped = ResolutionBinning.ResizeAndCrop(rows, width: 12, height: 6);
        var expectedRows = Enumerable.Range(1, 6).Select(i => (float)Math.Clamp((i + 0.5) / 2 - 0.5, 0, 3)).ToArray();
        Assert.Equal(expectedRows, cropped[0, 0, .., 0].data<float>().ToArray());
    }

    [Fact]
    public void SameSizeIsLeftAlone()
    {
        using var x = randn(1, 3, 8, 8);
        using var y = ResolutionBinning.ResizeAndCrop(x, 8, 8);
        TensorAssert.Equal(x, y, "ResolutionBinningTests#1");
    }
}
