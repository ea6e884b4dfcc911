using PixArtLora.Data.Images;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Data;

public class ImageTransformTests
{
    [Theory]
    // torchvision Resize(512): shorter side 512, longer int(512 * long / short); CenterCrop: round((size - 512) / 2), halves to even.
    [InlineData(640, 480, 682, 512, 85, 0)]   // int(682.67) = 682, (682 - 512) / 2 = 85
    [InlineData(480, 640, 512, 682, 0, 85)]
    [InlineData(683, 512, 683, 512, 86, 0)]   // 85.5 rounds to 86 (even)
    [InlineData(685, 512, 685, 512, 86, 0)]   // 86.5 rounds to 86 (even)
    [InlineData(300, 200, 768, 512, 128, 0)]  // upscaling: int(512 * 300 / 200) = 768
    public void ShorterSidePlansMatchTorchvision(int w, int h, int rw, int rh, int left, int top)
    {
        var plan = ImageTransformPlan.ShorterSide(w, h, 512, CropMode.Center, flip: false);
        Assert.Equal((rw, rh, left, top, 512, 512), (plan.ResizeWidth, plan.ResizeHeight, plan.CropLeft, plan.CropTop, plan.TargetWidth, plan.TargetHeight));
    }

    [Theory]
    // Official InternalDataMS: if binH/h > binW/w resize to (binH, int(w*binH/h)) else (int(h*binW/w), binW); then center crop.
    [InlineData(600, 400, 608, 416, 624, 416, 8, 0)]     // 416/400 = 1.04 > 608/600: width int(600*416/400) = 624
    [InlineData(300, 1000, 288, 896, 288, 960, 0, 32)]   // 896/1000 < 288/300: height int(1000*288/300) = 960
    [InlineData(1000, 1000, 512, 512, 512, 512, 0, 0)]
    [InlineData(1023, 500, 736, 352, 736, 359, 0, 4)]    // 352/500 = .704 < 736/1023 = .7195: height int(500*736/1023) = 359, (359-352)/2 = 3.5 -> 4
    public void BinPlansMatchOfficialDataset(int w, int h, int binW, int binH, int rw, int rh, int left, int top)
    {
        var plan = ImageTransformPlan.ForBin(w, h, binW, binH, CropMode.Center, flip: false);
        Assert.Equal((rw, rh, left, top), (plan.ResizeWidth, plan.ResizeHeight, plan.CropLeft, plan.CropTop));
        Assert.Equal((binW, binH), (plan.TargetWidth, plan.TargetHeight));
    }

    [Fact]
    public void RandomCropCoversTheWholeRange()
    {
        var first = ImageTransformPlan.ShorterSide(640, 480, 512, CropMode.Random, false, cropFractionX: 0.0);
        var last = ImageTransformPlan.ShorterSide(640, 480, 512, CropMode.Random, false, cropFractionX: 0.999999);
        var mid = ImageTransformPlan.ShorterSide(640, 480, 512, CropMode.Random, false, cropFractionX: 0.5);
        Assert.Equal(0, first.CropLeft);
        Assert.Equal(682 - 512, last.CropLeft);
        Assert.Equal(85, mid.CropLeft); // floor(0.5 * 171)
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageTransformPlan.ShorterSide(640, 480, 512, CropMode.Random, false, cropFractionX: 1.0));
    }

    [Fact]
    public void CropAndFlipMovePixelsExactly()
    {
        using var source = TestImages.Pattern(40, 30);
        var plan = ImageTransformPlan.ShorterSide(40, 30, 30, CropMode.Center, flip: false); // no resize, crop x 5..34
        Assert.Equal((40, 30, 5), (plan.ResizeWidth, plan.ResizeHeight, plan.CropLeft));
        using var cropped = ImageTransforms.Apply(source, plan);
        using var flipped = ImageTransforms.Apply(source, plan with { FlipHorizontal = true });
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 30; x++)
            {
                Assert.Equal(TestImages.PatternPixel(5 + x, y), cropped[x, y]);
                Assert.Equal(TestImages.PatternPixel(5 + 29 - x, y), flipped[x, y]);
            }
        Assert.Equal(TestImages.PatternPixel(0, 0), source[0, 0]); // source untouched
    }

    [Fact]
    public void ResizeUsesTheChosenFilter()
    {
        using var flat = TestImages.Solid(50, 70, new Rgb24(90, 160, 30));
        var plan = ImageTransformPlan.ForBin(50, 70, 32, 48, CropMode.Center, false, ResizeFilter.Bicubic);
        using var resized = ImageTransforms.Apply(flat, plan);
        Assert.Equal((32, 48), (resized.Width, resized.Height));
        Assert.Equal(new Rgb24(90, 160, 30), resized[10, 20]); // any interpolation of a constant is the constant

        using var pattern = TestImages.Pattern(64, 64);
        var bicubic = ImageTransformPlan.ShorterSide(64, 64, 40, CropMode.Center, false, ResizeFilter.Bicubic);
        using var a = ImageTransforms.Apply(pattern, bicubic);
        using var b = ImageTransforms.Apply(pattern, bicubic with { Filter = ResizeFilter.Lanczos });
        int differing = 0;
        for (int y = 0; y < 40; y++) for (int x = 0; x < 40; x++) if (a[x, y] != b[x, y]) differing++;
        Assert.True(differing > 100, $"bicubic and Lanczos agree on {1600 - differing} of 1600 pixels");
    }

    [Fact]
    public void PlanMustMatchTheImage()
    {
        using var img = TestImages.Pattern(20, 10);
        var plan = ImageTransformPlan.ShorterSide(30, 10, 10, CropMode.Center, false);
        var e = Assert.Throws<ArgumentException>(() => ImageTransforms.Apply(img, plan));
        Assert.Contains("30x10", e.Message);
    }

    [Fact]
    public void CacheKeyNamesEveryDecision()
    {
        var plan = ImageTransformPlan.ForBin(600, 400, 608, 416, CropMode.Center, flip: true, ResizeFilter.Lanczos);
        Assert.Equal("src=600x400;resize=624x416;crop=8,0,608x416;flip=1;filter=lanczos", plan.CacheKey);
        Assert.NotEqual(plan.CacheKey, (plan with { FlipHorizontal = false }).CacheKey);
    }
}
