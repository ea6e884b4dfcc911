using PixArtLora.Data;
using PixArtLora.Data.Buckets;
using PixArtLora.Data.Images;
using PixArtLora.Data.Samples;
using PixArtLora.Data.Sources;
using PixArtLora.Hub;
using PixArtLora.Registry;

namespace PixArtLora.Training.Loop;

/// <summary>
/// The training images of a run, opened and arranged: dataset (with <c>--max_train_samples</c>), aspect-ratio buckets,
/// the deterministic batch sampler, and the loader that plans each item's crop, flip and caption from (seed, epoch, item).
/// </summary>
public sealed class TrainingDataset
{
    public required ImageDataset Dataset { get; init; }
    public required BucketAssignment Buckets { get; init; }
    public required BucketBatchSampler Sampler { get; init; }
    public required ImageBatchLoader Loader { get; init; }

    /// <summary>
    /// Opens the data <paramref name="settings"/> name. <c>--dataset shapes</c> generates the offline sample set under
    /// <paramref name="samplesRoot"/> (default: next to the tiny model, <see cref="DefaultSamplesRoot"/>); Hugging Face ids
    /// are fetched through <paramref name="hub"/>.
    /// </summary>
    public static TrainingDataset Open(TrainSettings settings, Func<HubClient> hub, Action<string>? warn, string? samplesRoot = null,
        IProgress<HubFileProgress>? progress = null)
    {
        string? dataset = settings.Dataset;
        if (dataset is not null && string.Equals(dataset, ShapesDataset.ShortName, StringComparison.OrdinalIgnoreCase) && !Directory.Exists(dataset))
            dataset = ShapesDataset.EnsureWritten(Path.Combine(samplesRoot ?? DefaultSamplesRoot(), ShapesDataset.ShortName));
        var spec = new DatasetSpec
        {
            Dataset = dataset, JsonPath = settings.JsonPath, ImageDir = settings.ImageDir,
            CaptionColumn = settings.CaptionColumn, ImageColumn = settings.ImageColumn,
        };
        var options = DatasetLoadOptions.Default with { Warn = warn };
        var data = DatasetResolver.Open(spec, options, id =>
        {
            var snapshot = hub().Resolve(id, HubRepoType.Dataset, new[] { "*.parquet" }, "main", progress);
            return snapshot.Files.Select(snapshot.PathOf).ToList();
        });
        if (settings.MaxTrainSamples is int max && max < data.Count)
            data = new ImageDataset($"{data.Description}, first {max} items", data.Items.Take(max).ToList(), data.Report);
        if (data.Count == 0) throw new InvalidDataException($"{data.Description}: no usable training images ({data.Report.Summary})");

        var buckets = settings.MultiScale
            ? BucketAssignment.MultiScale(data, AspectRatioBins.ForTraining(settings.Resolution))
            : BucketAssignment.SingleResolution(data, settings.Resolution);
        var sampler = new BucketBatchSampler(buckets, settings.TrainBatchSize, settings.Seed);
        var loader = new ImageBatchLoader(data, buckets, new BatchOptions
        {
            Seed = settings.Seed,
            Crop = settings.CenterCrop ? CropMode.Center : CropMode.Random,
            RandomFlip = settings.RandomFlip,
            CaptionDropout = settings.ProportionEmptyPrompts,
            RealPromptRatio = settings.RealPromptRatio,
            Warn = warn,
        });
        return new TrainingDataset { Dataset = data, Buckets = buckets, Sampler = sampler, Loader = loader };
    }

    /// <summary>Every caption the run can feed the encoder: captions, alternate captions and the empty prompt.</summary>
    public IEnumerable<string> AllCaptions() =>
        Dataset.Items.SelectMany(i => i.AlternateCaption is { } alt ? new[] { i.Caption, alt } : new[] { i.Caption }).Append("").Distinct();

    /// <summary>
    /// The distinct planned images of epochs 0 to <paramref name="epochs"/> − 1: what a latent cache needs for the whole run.
    /// With center crops that is at most two per image (flipped or not); random crops can add one per epoch.
    /// </summary>
    public IReadOnlyList<(int Epoch, PlannedItem Item)> PlannedImages(int epochs)
    {
        var seen = new Dictionary<string, (int, PlannedItem)>(StringComparer.Ordinal);
        for (int epoch = 0; epoch < epochs; epoch++)
            foreach (var item in Dataset.Items)
            {
                var planned = Loader.Plan(epoch, item.Index);
                seen.TryAdd(planned.CacheKey, (epoch, planned));
            }
        return seen.Values.ToList();
    }

    /// <summary>Decodes and transforms the planned images of <paramref name="epoch"/> (one bucket at a time); null when none decodes.</summary>
    public ImageBatch? LoadPlanned(int epoch, IReadOnlyList<PlannedItem> items)
    {
        if (items.Count == 0) return null;
        var bucket = Buckets.BucketOf(items[0].Item.Index);
        if (items.Any(i => Buckets.BucketOf(i.Item.Index).Id != bucket.Id))
            throw new ArgumentException("planned images of one load must share a bucket");
        var sampled = new SampledBatch(epoch, 0, bucket, items.Select(i => i.Item.Index).ToList(), new DataLoaderPosition(epoch, 0));
        return Loader.Load(sampled);
    }

    /// <summary>$PIXARTLORA_HOME/datasets, else beside the tiny model's cache (~/.cache/pixartlora/datasets).</summary>
    public static string DefaultSamplesRoot() =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(TinyModels.DefaultModelsRoot()))!, "datasets");
}
