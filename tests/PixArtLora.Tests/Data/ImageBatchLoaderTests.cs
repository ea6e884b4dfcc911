using System.Security.Cryptography;
using PixArtLora.Data;
using PixArtLora.Data.Buckets;
using PixArtLora.Data.Images;
using PixArtLora.Data.Sources;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Data;

public class ImageBatchLoaderTests
{
    static readonly DatasetLoadOptions Lenient = new() { MinImageSide = 16, MaxBadFraction = 0.9, Warn = null };

    /// <summary>Folder of img{i}.png (Pattern seed i, width × height) with captions "caption {i}".</summary>
    static ImageDataset Folder(int count, int width, int height, out string dir)
    {
        dir = TestPaths.NewTempDir("loader");
        for (int i = 0; i < count; i++)
        {
            TestImages.Write(dir, $"img{i}.png", TestImages.Png(TestImages.Pattern(width, height, seed: i)));
            File.WriteAllText(Path.Combine(dir, $"img{i}.txt"), $"caption {i}");
        }
        return ImageFolderDataset.Open(dir, options: Lenient);
    }

    [Fact]
    public void PixelsAreTheCroppedAndFlippedImages()
    {
        using var scope = NewDisposeScope();
        var ds = Folder(6, 40, 30, out _);
        var buckets = BucketAssignment.SingleResolution(ds, 30); // 40x30 -> no resize, crop 30 columns
        var loader = new ImageBatchLoader(ds, buckets, new BatchOptions { Seed = 5, Crop = CropMode.Random, RandomFlip = true, CaptionDropout = 0 });
        var sampler = new BucketBatchSampler(buckets, batchSize: 4, seed: 5);
        int flips = 0;
        foreach (var sampled in sampler.From(DataLoaderPosition.Start).Take(6))
        {
            using var batch = loader.Load(sampled)!;
            Assert.Equal(new long[] { sampled.Items.Count, 3, 30, 30 }, batch.Pixels.shape);
            var px = batch.Pixels.data<float>().ToArray();
            for (int k = 0; k < batch.Count; k++)
            {
                var planned = batch.Items[k];
                int seed = planned.Item.Index; // img{i} sorts to index i
                Assert.Equal($"caption {seed}", planned.Caption);
                Assert.Equal((40, 30, 30, 30), (planned.Plan.ResizeWidth, planned.Plan.ResizeHeight, planned.Plan.TargetWidth, planned.Plan.TargetHeight));
                if (planned.Plan.FlipHorizontal) flips++;
                foreach (var (x, y) in new[] { (0, 0), (29, 0), (13, 17), (29, 29) })
                {
                    int sx = planned.Plan.CropLeft + (planned.Plan.FlipHorizontal ? 29 - x : x);
                    var p = TestImages.PatternPixel(sx, y, seed);
                    long at = k * 3L * 900 + y * 30 + x;
                    Assert.Equal(p.R / 127.5f - 1f, px[at], 5);
                    Assert.Equal(p.G / 127.5f - 1f, px[at + 900], 5);
                    Assert.Equal(p.B / 127.5f - 1f, px[at + 1800], 5);
                }
            }
            // Single resolution: micro-conditions are the training size and ratio 1, as the official InternalData.
            Assert.Equal(Enumerable.Repeat(30f, 2 * batch.Count), batch.OriginalSizes.data<float>().ToArray());
            Assert.Equal(Enumerable.Repeat(1f, batch.Count), batch.AspectRatios.data<float>().ToArray());
        }
        Assert.InRange(flips, 3, 21); // about half of 24 items
    }

    [Fact]
    public void MultiScaleBatchesCarryOriginalSizeAndBinRatio()
    {
        using var scope = NewDisposeScope();
        var ds = Folder(3, 60, 40, out _); // 40 / 60 = 0.667 -> bin 0.68 = 304 x 208 at 256
        var buckets = BucketAssignment.MultiScale(ds, AspectRatioBins.ForTraining(256));
        var loader = new ImageBatchLoader(ds, buckets, new BatchOptions { Dtype = ScalarType.BFloat16 });
        using var batch = loader.Load(new BucketBatchSampler(buckets, 3, 0).Epoch(0)[0])!;
        Assert.Equal(new long[] { 3, 3, 208, 304 }, batch.Pixels.shape);
        Assert.Equal(ScalarType.BFloat16, batch.Pixels.dtype);
        Assert.Equal(new float[] { 40, 60, 40, 60, 40, 60 }, batch.OriginalSizes.to(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(0.68f, batch.AspectRatios.to(ScalarType.Float32).data<float>()[0], 2);
        Assert.Equal(ResizeFilter.Bicubic, batch.Items[0].Plan.Filter);
        Assert.Equal((304, 208), (batch.Items[0].Plan.TargetWidth, batch.Items[0].Plan.TargetHeight));
    }

    [Fact]
    public void CaptionChoiceAndDropoutFollowTheOptions()
    {
        var dir = TestPaths.NewTempDir("loader");
        var entries = new List<object>();
        for (int i = 0; i < 10; i++)
        {
            TestImages.Write(dir, $"{i}.png", TestImages.Png(TestImages.Pattern(24, 24, seed: i)));
            entries.Add(new { path = $"{i}.png", prompt = $"short {i}", sharegpt4v = i == 9 ? "" : $"long {i}", height = 24, width = 24 });
        }
        var ds = JsonLabelDataset.Open(JsonLabelDatasetTests.WriteLabels(dir, entries), dir, Lenient);
        var buckets = BucketAssignment.SingleResolution(ds, 16);
        IEnumerable<string> Captions(BatchOptions o) =>
            Enumerable.Range(0, 40).SelectMany(e => ds.Items.Select(it => new ImageBatchLoader(ds, buckets, o).Plan(e, it.Index).Caption));

        Assert.All(Captions(new BatchOptions { CaptionDropout = 0 }), c => Assert.StartsWith("short", c));
        Assert.All(Captions(new BatchOptions { CaptionDropout = 1 }), c => Assert.Equal("", c));
        // real_prompt_ratio 0: always the sharegpt4v caption, except where it is empty.
        var alt = Captions(new BatchOptions { CaptionDropout = 0, RealPromptRatio = 0 }).ToList();
        Assert.Equal(360, alt.Count(c => c.StartsWith("long")));
        Assert.Equal(40, alt.Count(c => c == "short 9"));
        var half = Captions(new BatchOptions { CaptionDropout = 0, RealPromptRatio = 0.5, Seed = 3 }).Count(c => c.StartsWith("long"));
        Assert.InRange(half, 140, 220);
        var dropped = Captions(new BatchOptions { CaptionDropout = 0.1, Seed = 9 }).Count(c => c == "");
        Assert.InRange(dropped, 20, 65); // 10% of 400
    }

    [Fact]
    public void PlansAreDeterministicAndKeyTheCache()
    {
        var ds = Folder(4, 50, 40, out string dir);
        var buckets = BucketAssignment.SingleResolution(ds, 32);
        var options = new BatchOptions { Seed = 11, Crop = CropMode.Random, RandomFlip = true };
        var a = new ImageBatchLoader(ds, buckets, options);
        var b = new ImageBatchLoader(ds, buckets, options);
        for (int e = 0; e < 5; e++)
            for (int i = 0; i < 4; i++)
                Assert.Equal(a.Plan(e, i), b.Plan(e, i));
        var perEpoch = Enumerable.Range(0, 8).Select(e => a.Plan(e, 0).Plan.CacheKey).Distinct().Count();
        Assert.True(perEpoch > 1, "random crop/flip never changed across epochs");

        var plan = a.Plan(0, 2);
        string hash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, "img2.png"))));
        Assert.Equal($"sha256:{hash};{plan.Plan.CacheKey}", plan.CacheKey);
        Assert.StartsWith("src=50x40;resize=40x32;", plan.Plan.CacheKey);
    }

    [Fact]
    public void ImageThatFailsAtLoadTimeIsSkippedAndCounted()
    {
        using var scope = NewDisposeScope();
        var ds = Folder(4, 32, 32, out string dir);
        // The file is damaged after the dataset was opened (e.g. a sync in progress): header fine at scan, body cut now.
        string victim = Path.Combine(dir, "img1.png");
        byte[] full = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, full[..(full.Length * 2 / 3)]);

        var warnings = new List<string>();
        var buckets = BucketAssignment.SingleResolution(ds, 32);
        var loader = new ImageBatchLoader(ds, buckets, new BatchOptions { Warn = warnings.Add, CaptionDropout = 0 });
        var sampler = new BucketBatchSampler(buckets, 4, seed: 0, shuffle: false);
        using var batch = loader.Load(sampler.Epoch(0)[0])!;
        Assert.Equal(3, batch.Count);
        Assert.Equal(["caption 0", "caption 2", "caption 3"], batch.Captions);
        Assert.Equal(new long[] { 3, 3, 32, 32 }, batch.Pixels.shape);
        Assert.Equal(1, loader.FailedImages);
        Assert.Contains(victim, Assert.Single(warnings));

        File.Delete(Path.Combine(dir, "img0.png"));
        var single = new BucketBatchSampler(buckets, 1, seed: 0, shuffle: false);
        Assert.Null(loader.Load(single.Epoch(0)[0]));
        Assert.Equal(2, loader.FailedImages);
        var loaded = loader.Batches(single, DataLoaderPosition.Start).Take(3).Select(b => { using (b) return b.Captions[0]; }).ToList();
        Assert.Equal(["caption 2", "caption 3", "caption 2"], loaded); // epoch 0 items 2, 3, then epoch 1 starts (0, 1 fail)
    }
}
