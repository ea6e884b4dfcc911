using PixArtLora.Data;
using PixArtLora.Data.Buckets;
using PixArtLora.Data.Sources;
using PixArtLora.Registry;

namespace PixArtLora.Tests.Data;

public class BucketTests
{
    [Theory]
    // ratio = height / width against ASPECT_RATIO_512 (official diffusion/data/datasets/utils.py), worked by hand:
    [InlineData(600, 400, "0.68", 608, 416)]   // 0.667: 0.68 is 0.013 away, 0.6 is 0.067
    [InlineData(1000, 1000, "1.0", 512, 512)]
    [InlineData(300, 1000, "3.11", 288, 896)]  // 3.333: 3.11 is 0.22 away, 3.62 is 0.29
    [InlineData(1024, 500, "0.48", 736, 352)]  // 0.488: 0.48 is 0.008 away, 0.5 is 0.012
    [InlineData(900, 1000, "1.13", 480, 544)]  // 1.111: 1.13 is 0.019 away, 1.07 is 0.041
    [InlineData(4000, 800, "0.25", 1024, 256)] // 0.2: below the table, the first bin
    public void MultiScaleUsesTheNearestOfficialBin(int w, int h, string ratio, int binW, int binH)
    {
        var buckets = BucketAssignment.MultiScale([(w, h)], AspectRatioBins.ForTraining(512));
        var b = buckets.BucketOf(0);
        Assert.Equal((ratio, binW, binH), (b.Ratio, b.Width, b.Height));
    }

    [Fact]
    public void SixteenByNineAt1024()
    {
        // 1080 / 1920 = 0.5625: 0.57 (768 x 1344) is 0.0075 away, 0.52 is 0.0425.
        var b = BucketAssignment.MultiScale([(1920, 1080)], AspectRatioBins.ForTraining(1024)).BucketOf(0);
        Assert.Equal((1344, 768, 0.57), (b.Width, b.Height, b.AspectRatio));
    }

    [Fact]
    public void BucketsHoldTheirItemsInTableOrder()
    {
        var sizes = new List<(int, int)> { (100, 100), (600, 400), (100, 100), (300, 1000), (601, 400) };
        var a = BucketAssignment.MultiScale(sizes, AspectRatioBins.ForTraining(256));
        Assert.Equal(["0.68", "1.0", "3.11"], a.Buckets.Select(b => b.Ratio));
        Assert.Equal([[1, 4], [0, 2], [3]], a.Buckets.Select(b => b.Items.ToArray()));
        Assert.Equal([0, 1, 2], a.Buckets.Select(b => b.Id));
        Assert.Equal("3.11", a.BucketOf(3).Ratio);
        Assert.Contains("304x208 (2)", a.Describe());

        var single = BucketAssignment.SingleResolution(5, 512);
        Assert.Equal((1, 512, 512, 1.0), (single.Buckets.Count, single.BucketOf(4).Width, single.BucketOf(4).Height, single.BucketOf(4).AspectRatio));
    }

    [Fact]
    public void BucketingUsesLabelSizesWithoutDecoding()
    {
        // The labels claim 1000x350 and 300x1000; the files are small squares. Bucketing must follow the labels
        // (as the official dataset does), which shows no pixels were read to assign buckets.
        var dir = TestPaths.NewTempDir("bucket");
        TestImages.Write(dir, "a.png", TestImages.Png(TestImages.Pattern(32, 32)));
        TestImages.Write(dir, "b.png", TestImages.Png(TestImages.Pattern(32, 32)));
        string json = JsonLabelDatasetTests.WriteLabels(dir, new object[]
        {
            new { path = "a.png", prompt = "wide", width = 1000, height = 350 },
            new { path = "b.png", prompt = "tall", width = 300, height = 1000 },
        });
        var ds = JsonLabelDataset.Open(json, dir, new DatasetLoadOptions { MinImageSide = 16, Warn = null });
        var a = BucketAssignment.MultiScale(ds, AspectRatioBins.ForTraining(512));
        Assert.Equal(("0.35", 832, 288), (a.BucketOf(0).Ratio, a.BucketOf(0).Width, a.BucketOf(0).Height)); // exactly 0.35
        Assert.Equal(("3.11", 288, 896), (a.BucketOf(1).Ratio, a.BucketOf(1).Width, a.BucketOf(1).Height));
    }
}
