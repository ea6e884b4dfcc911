using PixArtLora.Data;
using PixArtLora.Data.Buckets;
using PixArtLora.Data.Cache;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Training.Loop;

/// <summary>
/// Micro-batches for the loop: sampled batches of the dataset turned into VAE posteriors and caption features. With
/// caches (the default) every caption and every planned image of the run is encoded once up front into
/// <c>&lt;cache_dir&gt;/text</c> and <c>&lt;cache_dir&gt;/latents</c>, T5 is released, and steps read features from disk;
/// a second run with the same data and model finds everything cached and never loads T5. With <c>--no_cache</c>
/// T5 and the VAE stay loaded and encode every batch.
/// </summary>
public sealed class TrainingDataFeed : ITrainingBatches
{
    readonly TrainingDataset _data;
    readonly TextFeatureCache? _textCache;
    readonly T5PromptEncoder? _textEncoder;
    readonly AutoencoderKL _vae;
    readonly LatentCache? _latentCache;
    readonly Device _encodeDevice;

    TrainingDataFeed(TrainingDataset data, TextFeatureCache? textCache, T5PromptEncoder? textEncoder, AutoencoderKL vae,
        LatentCache? latentCache, Device encodeDevice)
    {
        _data = data; _textCache = textCache; _textEncoder = textEncoder; _vae = vae; _latentCache = latentCache; _encodeDevice = encodeDevice;
    }

    public int BatchesPerEpoch => _data.Sampler.BatchesPerEpoch;
    public TrainingDataset Data => _data;
    /// <summary>The VAE, in float32 on the training device (validation decodes with it).</summary>
    public AutoencoderKL Vae => _vae;

    /// <summary>Caption features of <paramref name="prompts"/> on the CPU, from the cache when possible.</summary>
    public (Tensor Embeddings, Tensor Mask) EncodePrompts(IReadOnlyList<string> prompts)
    {
        if (_textCache is not null) return _textCache.GetOrEncode(prompts, CPU);
        using var scope = NewDisposeScope();
        var (embeddings, mask) = _textEncoder!.Encode(prompts);
        return (embeddings.to(CPU).MoveToOuterDisposeScope(), mask.to(CPU).MoveToOuterDisposeScope());
    }
    /// <summary>Captions encoded by T5 while preparing (0 when the text cache was complete and T5 was never loaded).</summary>
    public int EncodedCaptions { get; private set; }
    /// <summary>Images encoded by the VAE while preparing (0 when the latent cache was complete).</summary>
    public int EncodedImages { get; private set; }

    /// <summary>The options T5 runs with for <paramref name="plan"/> (part of the text cache's key through its fingerprint).</summary>
    public static T5PromptEncoderOptions TextEncoderOptions(TrainingPlan plan, int tokens) => new()
    {
        MaxLength = tokens, Device = plan.Device, DType = plan.FrozenDtype == ScalarType.Float32 ? null : plan.FrozenDtype,
        OutputDevice = CPU,
    };

    /// <summary>
    /// Prepares the features of a run spanning <paramref name="epochs"/> epochs. <paramref name="extraPrompts"/> (validation
    /// prompts) are cached with the captions so that validation needs no T5 either.
    /// </summary>
    public static TrainingDataFeed Open(TrainingPlan plan, TrainingModelFiles files, TrainingDataset data, int tokens, int epochs,
        IEnumerable<string> extraPrompts, Action<string> log, CancellationToken cancel = default)
    {
        var options = TextEncoderOptions(plan, tokens);
        // The VAE encodes in float32 on the training device; its output is what the cache keys on.
        var vae = AutoencoderKL.Load(files.VaeFolder, plan.Device, ScalarType.Float32);
        try
        {
            if (plan.Settings.NoCache)
            {
                log("--no_cache: T5 and the VAE stay loaded and encode every batch");
                var encoder = T5PromptEncoder.Load(files.TextEncoderFolder, files.TokenizerFolder, options);
                return new TrainingDataFeed(data, null, encoder, vae, null, plan.Device);
            }
            var textCache = TextFeatureCache.ForT5(Path.Combine(plan.CacheDir, "text"), files.TextEncoderFolder, files.TokenizerFolder, options);
            var latentCache = LatentCache.Open(Path.Combine(plan.CacheDir, "latents"), vae);
            var feed = new TrainingDataFeed(data, textCache, null, vae, latentCache, plan.Device);
            feed.Precompute(epochs, extraPrompts, log, cancel);
            return feed;
        }
        catch
        {
            vae.Dispose();
            throw;
        }
    }

    /// <summary>Fills the caches for the whole run; encoders are loaded only for what is missing, and T5 is released after.</summary>
    void Precompute(int epochs, IEnumerable<string> extraPrompts, Action<string> log, CancellationToken cancel)
    {
        var captions = _data.AllCaptions().Concat(extraPrompts).Distinct().ToList();
        EncodedCaptions = _textCache!.EnsureCached(captions, batchSize: 8, includeEmptyPrompt: true, cancellationToken: cancel);
        _textCache.ReleaseEncoder();
        log(EncodedCaptions == 0
            ? $"text features: all {captions.Count} captions found in {_textCache.Store.Folder} (T5 not loaded)"
            : $"text features: encoded {EncodedCaptions} of {captions.Count} captions into {_textCache.Store.Folder}");

        var planned = _data.PlannedImages(epochs);
        var missing = planned.Where(p => !_latentCache!.Contains(LatentKey(p.Item))).ToList();
        foreach (var group in missing.GroupBy(p => (p.Epoch, Bucket: _data.Buckets.BucketOf(p.Item.Item.Index).Id)))
            foreach (var chunk in group.Select(p => p.Item).Chunk(8))
            {
                cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                using var batch = _data.LoadPlanned(group.Key.Epoch, chunk);
                if (batch is null) continue;
                for (int i = 0; i < batch.Count; i++)
                {
                    int row = i;
                    using var posterior = _latentCache!.GetOrEncode(LatentKey(batch.Items[row]), () => batch.Pixels[row].to(_encodeDevice));
                    EncodedImages++;
                }
            }
        _latentCache!.Flush();
        log(EncodedImages == 0
            ? $"latents: all {planned.Count} planned images found in the cache (nothing encoded)"
            : $"latents: encoded {EncodedImages} of {planned.Count} planned images");
    }

    /// <summary>What identifies one transformed image in the latent cache.</summary>
    static LatentCacheKey LatentKey(PlannedItem item)
    {
        var p = item.Plan;
        return new LatentCacheKey(item.Item.Image.ContentHash(), p.ResizeWidth, p.ResizeHeight, p.CropLeft, p.CropTop, p.TargetWidth, p.TargetHeight,
            p.FlipHorizontal, "filter=" + p.Filter.ToString().ToLowerInvariant());
    }

    public IEnumerable<TrainingBatch> From(int epoch, int batchIndex)
    {
        foreach (var sampled in _data.Sampler.From(new DataLoaderPosition(epoch, batchIndex)))
            if (Build(sampled) is { } batch) yield return batch;
    }

    /// <summary>The features of one sampled batch, or null when none of its images could be read.</summary>
    TrainingBatch? Build(SampledBatch sampled)
    {
        using var scope = NewDisposeScope();
        var planned = _data.Loader.Plan(sampled);
        List<PlannedItem> items;
        List<(Tensor Mean, Tensor Std)> posteriors;
        Tensor resolution, aspectRatio;
        if (_latentCache is not null && planned.All(p => _latentCache.Contains(LatentKey(p))))
        {
            // Everything cached: no image is decoded at all.
            items = planned.ToList();
            posteriors = items.Select(p =>
            {
                _latentCache.TryGet(LatentKey(p), out var d);
                using (d) return (d.Mean.alias(), d.Std.alias());
            }).ToList();
            (resolution, aspectRatio) = MicroConditions(_data.Buckets.Mode, items, sampled.Bucket);
        }
        else
        {
            using var images = _data.Loader.Load(sampled);
            if (images is null) return null;
            items = images.Items.ToList();
            posteriors = new();
            for (int i = 0; i < images.Count; i++)
            {
                int row = i;
                using var d = _latentCache is not null
                    ? _latentCache.GetOrEncode(LatentKey(items[row]), () => images.Pixels[row].to(_encodeDevice))
                    : _vae.Encode(images.Pixels[row].unsqueeze(0).to(_encodeDevice));
                posteriors.Add((d.Mean.to(CPU), d.Std.to(CPU)));
            }
            resolution = images.OriginalSizes.alias();
            aspectRatio = images.AspectRatios.alias();
        }
        var captions = items.Select(i => i.Caption).ToList();
        var (embeddings, mask) = EncodePrompts(captions);
        var batch = new TrainingBatch
        {
            LatentMean = cat(posteriors.Select(p => p.Mean).ToArray(), 0).MoveToOuterDisposeScope(),
            LatentStd = cat(posteriors.Select(p => p.Std).ToArray(), 0).MoveToOuterDisposeScope(),
            TextEmbeddings = embeddings.to(CPU).MoveToOuterDisposeScope(),
            TextMask = mask.to(CPU).MoveToOuterDisposeScope(),
            Resolution = resolution.MoveToOuterDisposeScope(),
            AspectRatio = aspectRatio.MoveToOuterDisposeScope(),
            Captions = captions,
            Epoch = sampled.Epoch,
            Next = (sampled.Next.Epoch, sampled.Next.BatchIndex),
        };
        return batch;
    }

    /// <summary>
    /// PixArt-α's micro-conditions for items that are not decoded, as <see cref="ImageBatchLoader"/> sets them: the original
    /// (height, width) for multi-scale buckets, the bucket size for single resolution; the bucket's aspect ratio.
    /// </summary>
    internal static (Tensor Resolution, Tensor AspectRatio) MicroConditions(BucketMode mode, IReadOnlyList<PlannedItem> items, Bucket bucket)
    {
        var sizes = new float[items.Count * 2];
        for (int k = 0; k < items.Count; k++)
            (sizes[2 * k], sizes[2 * k + 1]) = mode == BucketMode.MultiScale
                ? (items[k].Item.Height, items[k].Item.Width)
                : (bucket.Height, bucket.Width);
        return (tensor(sizes, new long[] { items.Count, 2 }), full(new long[] { items.Count, 1 }, bucket.AspectRatio, ScalarType.Float32));
    }

    public void Dispose()
    {
        _textCache?.Dispose();
        _textEncoder?.Dispose();
        _latentCache?.Dispose();
        _vae.Dispose();
    }
}
