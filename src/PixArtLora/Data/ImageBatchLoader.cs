using PixArtLora.Data.Buckets;
using PixArtLora.Data.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Data;

/// <summary>
/// Turns sampled batches into tensors: plans each item's transform and caption from (seed, epoch, item) alone,
/// decodes and transforms the images in parallel, and stacks them. An image that fails to decode (truncated,
/// corrupt, vanished) is left out of its batch with a warning and counted in <see cref="FailedImages"/>;
/// training goes on.
/// </summary>
public sealed class ImageBatchLoader
{
    readonly ImageDataset _dataset;
    readonly BucketAssignment _buckets;
    readonly BatchOptions _options;
    readonly ResizeFilter _filter;
    int _failed;

    /// <summary>Creates a loader for <paramref name="dataset"/> bucketed by <paramref name="buckets"/>.</summary>
    public ImageBatchLoader(ImageDataset dataset, BucketAssignment buckets, BatchOptions? options = null)
    {
        if (buckets.ItemCount != dataset.Count)
            throw new ArgumentException($"bucket assignment covers {buckets.ItemCount} items, the dataset has {dataset.Count}");
        _dataset = dataset;
        _buckets = buckets;
        _options = options ?? new BatchOptions();
        if (_options.CaptionDropout is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"caption dropout {_options.CaptionDropout} must be in [0, 1]");
        if (_options.RealPromptRatio is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"real prompt ratio {_options.RealPromptRatio} must be in [0, 1]");
        // The official multi-scale datasets switch to Lanczos for the 2048 and 2880 tables.
        _filter = _options.Filter ?? (buckets.BaseResolution >= 2048 ? ResizeFilter.Lanczos : ResizeFilter.Bicubic);
    }

    /// <summary>Images that failed to decode so far and were left out of their batches.</summary>
    public int FailedImages => Volatile.Read(ref _failed);

    /// <summary>The plan of item <paramref name="itemIndex"/> in epoch <paramref name="epoch"/>, from its header size.</summary>
    public PlannedItem Plan(int epoch, int itemIndex) => Plan(epoch, _dataset.Items[itemIndex], null);

    /// <summary>The plans of a sampled batch, without decoding anything.</summary>
    public IReadOnlyList<PlannedItem> Plan(SampledBatch batch) => batch.Items.Select(i => Plan(batch.Epoch, i)).ToList();

    /// <summary>Decodes and stacks a sampled batch; null when none of its images could be decoded.</summary>
    public ImageBatch? Load(SampledBatch batch)
    {
        var planned = new PlannedItem?[batch.Items.Count];
        var images = new Image<Rgb24>?[batch.Items.Count];
        try
        {
            Parallel.For(0, batch.Items.Count, i =>
            {
                var item = _dataset.Items[batch.Items[i]];
                try
                {
                    using var decoded = item.Image.Decode(_options.ImageLimits);
                    // Label files may state a size that differs from the file; the plan must fit the real pixels.
                    var plan = Plan(batch.Epoch, item, decoded.Size());
                    images[i] = ImageTransforms.Apply(decoded, plan.Plan);
                    planned[i] = plan;
                }
                catch (ImageLoadException e)
                {
                    Interlocked.Increment(ref _failed);
                    _options.Warn?.Invoke($"skipping item {item.Index} in epoch {batch.Epoch}: {e.Message}");
                }
            });
            var kept = Enumerable.Range(0, planned.Length).Where(i => planned[i] != null).ToList();
            if (kept.Count == 0) return null;
            var device = _options.Device ?? CPU;
            var pixels = ImageTensors.ToBatch(kept.Select(i => images[i]!).ToList(), _options.Dtype, device);
            var bucket = batch.Bucket;
            var sizes = new float[kept.Count * 2];
            for (int k = 0; k < kept.Count; k++)
            {
                var item = planned[kept[k]]!.Item;
                // Official datasets: multi-scale passes the original (label) size, single resolution the training size.
                (sizes[2 * k], sizes[2 * k + 1]) = _buckets.Mode == BucketMode.MultiScale
                    ? (item.Height, item.Width)
                    : (bucket.Height, bucket.Width);
            }
            using var sizesCpu = torch.tensor(sizes, new long[] { kept.Count, 2 });
            var originalSizes = sizesCpu.to(_options.Dtype, device, copy: true);
            var ratios = torch.full(new long[] { kept.Count, 1 }, bucket.AspectRatio, _options.Dtype, device);
            return new ImageBatch(batch, kept.Select(i => planned[i]!).ToList(), pixels, originalSizes, ratios);
        }
        finally
        {
            foreach (var image in images) image?.Dispose();
        }
    }

    /// <summary>Loaded batches from <paramref name="position"/> on (endless; batches whose images all failed are passed over).</summary>
    public IEnumerable<ImageBatch> Batches(BucketBatchSampler sampler, DataLoaderPosition position)
    {
        foreach (var sampled in sampler.From(position))
            if (Load(sampled) is { } batch) yield return batch;
    }

    PlannedItem Plan(int epoch, DatasetItem item, SixLabors.ImageSharp.Size? actual)
    {
        var bucket = _buckets.BucketOf(item.Index);
        // Always draw the same values in the same order, so that changing one option never shifts another's draws.
        var rng = DeterministicRandom.For(_options.Seed, epoch, item.Index);
        double fx = rng.NextDouble(), fy = rng.NextDouble();
        bool flip = rng.NextDouble() < 0.5 && _options.RandomFlip;
        bool useAlternate = rng.NextDouble() >= _options.RealPromptRatio && !string.IsNullOrEmpty(item.AlternateCaption);
        bool drop = rng.NextDouble() < _options.CaptionDropout;

        int w = actual?.Width ?? item.Width, h = actual?.Height ?? item.Height;
        var plan = _buckets.Mode == BucketMode.MultiScale
            ? ImageTransformPlan.ForBin(w, h, bucket.Width, bucket.Height, _options.Crop, flip, _filter, fx, fy)
            : ImageTransformPlan.ShorterSide(w, h, bucket.Width, _options.Crop, flip, _filter, fx, fy);
        string caption = drop ? "" : useAlternate ? item.AlternateCaption! : item.Caption;
        return new PlannedItem(item, plan, caption);
    }
}
