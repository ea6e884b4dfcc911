using System.Text.Json;
using PixArtLora.Data.Images;

namespace PixArtLora.Data.Sources;

/// <summary>
/// The official PixArt trainers' label format (InternalData / InternalDataMS): a JSON list of
/// <c>{"path", "prompt", "sharegpt4v", "height", "width", "ratio"}</c>, paths relative to an image folder.
/// <c>prompt</c> becomes <see cref="DatasetItem.Caption"/> and <c>sharegpt4v</c> (optional) the alternate caption
/// picked with probability 1 − real_prompt_ratio. Sizes come from the labels when present, else from the image
/// header; the aspect-ratio filter uses the label's <c>ratio</c> (height / width) when given, as the reference does.
/// A path escaping the image folder stops loading with an error.
/// </summary>
public static class JsonLabelDataset
{
    /// <summary>Opens <paramref name="jsonPath"/>; image paths are resolved under <paramref name="imageDir"/> (default: the JSON file's folder).</summary>
    public static ImageDataset Open(string jsonPath, string? imageDir = null, DatasetLoadOptions? options = null)
    {
        options ??= DatasetLoadOptions.Default;
        jsonPath = Path.GetFullPath(jsonPath);
        if (!File.Exists(jsonPath)) throw new FileNotFoundException($"label file not found: {jsonPath}", jsonPath);
        imageDir = Path.GetFullPath(imageDir ?? Path.GetDirectoryName(jsonPath)!);
        if (!Directory.Exists(imageDir)) throw new DirectoryNotFoundException($"image folder not found: {imageDir} (for labels {jsonPath})");

        JsonDocument doc;
        try
        {
            using var stream = File.OpenRead(jsonPath);
            doc = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{jsonPath}: not valid JSON: {e.Message}", e);
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{jsonPath}: expected a JSON list of label entries, found {doc.RootElement.ValueKind}");

        var tally = new DatasetScanTally(jsonPath, options);
        var items = new List<DatasetItem>();
        int index = -1;
        foreach (var entry in doc.RootElement.EnumerateArray())
        {
            index++;
            tally.Row();
            string where = $"{jsonPath} entry {index}";
            if (entry.ValueKind != JsonValueKind.Object) { tally.Skip(SkipReason.MissingImage, $"{where}: expected an object, found {entry.ValueKind}"); continue; }
            string? relative = String(entry, "path", where);
            if (string.IsNullOrEmpty(relative)) { tally.Skip(SkipReason.MissingImage, $"{where}: no \"path\""); continue; }
            string file = ContainedPath.Resolve(imageDir, relative, where); // escaping paths are an error, not a skip
            string name = $"{where} ({relative})";
            string? prompt = String(entry, "prompt", where)?.Trim();
            if (string.IsNullOrEmpty(prompt)) { tally.Skip(SkipReason.MissingCaption, $"{name}: \"prompt\" is missing or empty"); continue; }
            string? alternate = String(entry, "sharegpt4v", where)?.Trim();
            if (!File.Exists(file)) { tally.Skip(SkipReason.MissingImage, $"{name}: file not found: {file}"); continue; }

            int? width = Int(entry, "width", where), height = Int(entry, "height", where);
            if (width is not > 0 || height is not > 0)
            {
                try
                {
                    var header = ImageDecoder.ReadHeader(file, options.ImageLimits);
                    (width, height) = (header.Width, header.Height);
                }
                catch (ImageLoadException e)
                {
                    tally.Skip(SkipReason.UnreadableImage, e.Message);
                    continue;
                }
            }
            if (Number(entry, "ratio", where) is { } ratio && ratio > options.MaxAspectRatio)
            {
                tally.Skip(SkipReason.ExtremeAspectRatio, $"{name}: label ratio {ratio} beyond {options.MaxAspectRatio}");
                continue;
            }
            if (!tally.AcceptSize(name, width.Value, height.Value)) continue;
            var source = new FileImageSource(file, options.ImageLimits);
            items.Add(new DatasetItem(items.Count, source, prompt, string.IsNullOrEmpty(alternate) ? null : alternate, width.Value, height.Value));
        }
        return new ImageDataset(jsonPath, items, tally.Finish());
    }

    static string? String(JsonElement e, string key, string where) =>
        !e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new InvalidDataException($"{where}: \"{key}\" should be a string, found {v.ValueKind}");

    static int? Int(JsonElement e, string key, string where) =>
        Number(e, key, where) is { } d ? d == Math.Floor(d) && d is >= 0 and <= int.MaxValue ? (int)d
            : throw new InvalidDataException($"{where}: \"{key}\" should be a whole number of pixels, found {d}") : null;

    static double? Number(JsonElement e, string key, string where) =>
        !e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number ? v.GetDouble()
        : throw new InvalidDataException($"{where}: \"{key}\" should be a number, found {v.ValueKind}");
}
