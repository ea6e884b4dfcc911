using System.Text.RegularExpressions;

namespace PixArtLora.Data.Sources;

/// <summary>What the user asked to train on, as given on the command line.</summary>
public sealed record DatasetSpec
{
    /// <summary>--dataset: a short name (pokemon), a Hugging Face dataset id, a parquet file, a folder of parquet files, or an image folder.</summary>
    public string? Dataset { get; init; }
    /// <summary>--json_path: a label file in the official PixArt format (used instead of --dataset).</summary>
    public string? JsonPath { get; init; }
    /// <summary>--image_dir: where the label file's paths point (default: the label file's folder).</summary>
    public string? ImageDir { get; init; }
    /// <summary>--caption_column: overrides the caption column of parquet datasets and metadata.jsonl.</summary>
    public string? CaptionColumn { get; init; }
    /// <summary>--image_column: overrides the image column of parquet datasets.</summary>
    public string? ImageColumn { get; init; }
}

/// <summary>
/// Turns a <see cref="DatasetSpec"/> into an opened <see cref="ImageDataset"/>. Hugging Face dataset ids are turned
/// into local parquet files by <c>hubFiles</c> (the hub client: id → downloaded parquet paths); everything else is local.
/// </summary>
public static class DatasetResolver
{
    static readonly Regex HubId = new(@"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$", RegexOptions.Compiled);

    /// <summary>Opens the dataset <paramref name="spec"/> describes.</summary>
    public static ImageDataset Open(DatasetSpec spec, DatasetLoadOptions? options = null, Func<string, IReadOnlyList<string>>? hubFiles = null)
    {
        options ??= DatasetLoadOptions.Default;
        if (spec.JsonPath != null)
        {
            if (spec.Dataset != null) throw new ArgumentException("give either --dataset or --json_path, not both");
            return JsonLabelDataset.Open(spec.JsonPath, spec.ImageDir, options);
        }
        if (string.IsNullOrWhiteSpace(spec.Dataset)) throw new ArgumentException("no dataset given: use --dataset (name, id, parquet file or folder) or --json_path");
        string dataset = spec.Dataset;

        if (File.Exists(dataset))
        {
            if (!dataset.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"dataset file {dataset} is not a .parquet file (for label JSON use --json_path)");
            return ParquetImageDataset.Open([Path.GetFullPath(dataset)], spec.CaptionColumn, spec.ImageColumn, options);
        }
        if (Directory.Exists(dataset))
        {
            var parquet = TrainSplit(Directory.EnumerateFiles(dataset, "*.parquet", SearchOption.AllDirectories).ToList(), dataset);
            if (parquet.Count > 0)
                return ParquetImageDataset.Open(parquet, spec.CaptionColumn, spec.ImageColumn, options,
                    $"{Path.GetFullPath(dataset)} ({parquet.Count} parquet file{(parquet.Count == 1 ? "" : "s")})");
            return ImageFolderDataset.Open(dataset, spec.CaptionColumn, options);
        }

        var known = KnownDatasets.Find(dataset);
        string id = known?.HubId ?? dataset;
        if (known == null && !HubId.IsMatch(dataset))
            throw new ArgumentException(
                $"dataset '{dataset}' not found: not a short name ({string.Join(", ", KnownDatasets.All.Select(d => d.ShortName))}), " +
                "an existing parquet file or folder, or a Hugging Face dataset id (owner/name)");
        if (hubFiles == null)
            throw new InvalidOperationException($"dataset '{dataset}' is the Hugging Face dataset {id}, but no hub client was given to download it");
        var files = TrainSplit(hubFiles(id).ToList(), null);
        if (files.Count == 0) throw new InvalidDataException($"Hugging Face dataset {id} has no parquet files");
        return ParquetImageDataset.Open(files, spec.CaptionColumn ?? known?.CaptionColumn, spec.ImageColumn ?? known?.ImageColumn, options,
            $"{id} ({files.Count} parquet file{(files.Count == 1 ? "" : "s")})");
    }

    /// <summary>
    /// Dataset repositories hold one file set per split (data/train-00000-of-00001.parquet, default/train/0000.parquet,
    /// data/test-...): when any file is marked as the train split, only those are used; otherwise all. Sorted for a stable order.
    /// </summary>
    public static List<string> TrainSplit(List<string> files, string? root)
    {
        string Relative(string f) => (root != null ? Path.GetRelativePath(root, f) : f).Replace('\\', '/');
        bool IsTrain(string f) => Relative(f).Split('/').Any(part => part == "train" || part.StartsWith("train-", StringComparison.Ordinal) || part.StartsWith("train.", StringComparison.Ordinal));
        var train = files.Where(IsTrain).ToList();
        return (train.Count > 0 ? train : files).Select(Path.GetFullPath).OrderBy(f => f, StringComparer.Ordinal).ToList();
    }
}
