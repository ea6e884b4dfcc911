using System.Text.Json;
using PixArtLora.Data.Images;

namespace PixArtLora.Data.Sources;

/// <summary>
/// A folder of images. With a <c>metadata.jsonl</c> (Hugging Face "imagefolder": one JSON object per line with
/// <c>file_name</c> and a caption column) the listed files are used; without one, every image below the folder
/// (sorted by relative path) is paired with the text file of the same name (<c>cat.png</c> + <c>cat.txt</c>).
/// Sizes are read from image headers only.
/// </summary>
public static class ImageFolderDataset
{
    /// <summary>The Hugging Face imagefolder metadata file name.</summary>
    public const string MetadataFile = "metadata.jsonl";

    /// <summary>File extensions treated as images when pairing with captions.</summary>
    public static IReadOnlyList<string> ImageExtensions { get; } = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"];

    /// <summary>
    /// Opens <paramref name="folder"/>. <paramref name="captionColumn"/> names the metadata.jsonl key holding the
    /// caption (default: the first of <see cref="ParquetImageDataset.DefaultCaptionColumns"/> present in the first line).
    /// </summary>
    public static ImageDataset Open(string folder, string? captionColumn = null, DatasetLoadOptions? options = null)
    {
        options ??= DatasetLoadOptions.Default;
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"image folder not found: {folder}");
        string metadata = Path.Combine(folder, MetadataFile);
        return File.Exists(metadata) ? OpenWithMetadata(folder, metadata, captionColumn, options) : OpenPairs(folder, options);
    }

    static ImageDataset OpenWithMetadata(string folder, string metadata, string? captionColumn, DatasetLoadOptions options)
    {
        var tally = new DatasetScanTally(metadata, options);
        var items = new List<DatasetItem>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(metadata))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            tally.Row();
            string where = $"{metadata} line {lineNumber}";
            JsonElement row;
            try
            {
                using var doc = JsonDocument.Parse(line);
                row = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                tally.Skip(SkipReason.MissingImage, $"{where}: not valid JSON: {e.Message}");
                continue;
            }
            if (row.ValueKind != JsonValueKind.Object) { tally.Skip(SkipReason.MissingImage, $"{where}: expected a JSON object"); continue; }
            captionColumn ??= PickCaptionColumn(row, where);
            if (!row.TryGetProperty("file_name", out var fileName) || fileName.ValueKind != JsonValueKind.String || fileName.GetString() is not { Length: > 0 } relative)
            {
                tally.Skip(SkipReason.MissingImage, $"{where}: no \"file_name\"");
                continue;
            }
            string file = ContainedPath.Resolve(folder, relative, where);
            string? caption = row.TryGetProperty(captionColumn, out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()?.Trim() : null;
            AddItem(items, tally, options, file, $"{where} ({relative})", caption, $"\"{captionColumn}\" is missing or empty");
        }
        return new ImageDataset(folder, items, tally.Finish());
    }

    static ImageDataset OpenPairs(string folder, DatasetLoadOptions options)
    {
        var tally = new DatasetScanTally(folder, options);
        var items = new List<DatasetItem>();
        var images = Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => Path.GetRelativePath(folder, f), StringComparer.Ordinal)
            .ToList();
        if (images.Count == 0)
            throw new InvalidDataException($"{folder}: no {MetadataFile} and no images ({string.Join(", ", ImageExtensions)}) found");
        foreach (var file in images)
        {
            tally.Row();
            string captionFile = Path.ChangeExtension(file, ".txt");
            string? caption = File.Exists(captionFile) ? File.ReadAllText(captionFile).Trim() : null;
            AddItem(items, tally, options, file, file, caption, caption == null ? $"no caption file {Path.GetFileName(captionFile)}" : "caption file is empty");
        }
        return new ImageDataset(folder, items, tally.Finish());
    }

    static void AddItem(List<DatasetItem> items, DatasetScanTally tally, DatasetLoadOptions options, string file, string name, string? caption, string captionProblem)
    {
        if (string.IsNullOrEmpty(caption)) { tally.Skip(SkipReason.MissingCaption, $"{name}: {captionProblem}"); return; }
        ImageHeader header;
        try
        {
            header = ImageDecoder.ReadHeader(file, options.ImageLimits);
        }
        catch (ImageLoadException e)
        {
            tally.Skip(e.Problem == ImageProblem.Missing ? SkipReason.MissingImage : SkipReason.UnreadableImage, e.Message);
            return;
        }
        if (!tally.AcceptSize(name, header.Width, header.Height)) return;
        items.Add(new DatasetItem(items.Count, new FileImageSource(file, options.ImageLimits), caption, null, header.Width, header.Height));
    }

    static string PickCaptionColumn(JsonElement row, string where) =>
        ParquetImageDataset.DefaultCaptionColumns.FirstOrDefault(name => row.TryGetProperty(name, out _))
        ?? throw new InvalidDataException(
            $"{where}: none of the caption keys {string.Join(", ", ParquetImageDataset.DefaultCaptionColumns)} is present " +
            $"(keys: {string.Join(", ", row.EnumerateObject().Select(p => p.Name))}); name one with --caption_column");
}
