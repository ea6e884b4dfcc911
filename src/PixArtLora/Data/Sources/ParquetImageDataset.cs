using System.Security.Cryptography;
using Parquet;
using Parquet.Schema;
using PixArtLora.Data.Images;

namespace PixArtLora.Data.Sources;

/// <summary>
/// Hugging Face datasets stored as parquet (what the Hub serves, written by Arrow C++): an image column that is
/// either struct {bytes, path} (the <c>Image</c> feature) or plain binary, and a string caption column. Files are
/// scanned row group by row group, never whole: captions are kept, image bytes are only inspected (header size,
/// completeness, SHA-256) and dropped, then re-read from the file when an item is loaded.
/// </summary>
public static class ParquetImageDataset
{
    /// <summary>Caption columns tried in order when none is named: HF text-to-image datasets use one of these.</summary>
    public static IReadOnlyList<string> DefaultCaptionColumns { get; } = ["text", "caption", "en_text", "prompt"];

    /// <summary>The image column used when none is named.</summary>
    public const string DefaultImageColumn = "image";

    /// <summary>Row groups' image bytes kept in memory for loading at training time.</summary>
    public const long DefaultImageCacheBytes = 1L << 30;

    /// <summary>
    /// Opens parquet <paramref name="files"/> as one dataset, in the order given. <paramref name="captionColumn"/> and
    /// <paramref name="imageColumn"/> override the defaults (--caption_column, --image_column).
    /// </summary>
    public static ImageDataset Open(IReadOnlyList<string> files, string? captionColumn = null, string? imageColumn = null,
        DatasetLoadOptions? options = null, string? description = null)
    {
        options ??= DatasetLoadOptions.Default;
        if (files.Count == 0) throw new ArgumentException("no parquet files given");
        description ??= files.Count == 1 ? files[0] : $"{Path.GetDirectoryName(files[0])} ({files.Count} parquet files)";
        var tally = new DatasetScanTally(description, options);
        var store = new ParquetImageStore(DefaultImageCacheBytes);
        var items = new List<DatasetItem>();
        foreach (var file in files)
            Task.Run(() => ScanFileAsync(Path.GetFullPath(file), captionColumn, imageColumn, options, tally, store, items)).GetAwaiter().GetResult();
        return new ImageDataset(description, items, tally.Finish());
    }

    static async Task ScanFileAsync(string file, string? captionColumn, string? imageColumn, DatasetLoadOptions options,
        DatasetScanTally tally, ParquetImageStore store, List<DatasetItem> items)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"parquet file not found: {file}", file);
        ParquetReader reader;
        try
        {
            reader = await ParquetReader.CreateAsync(file).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ParquetException or InvalidDataException)
        {
            throw new InvalidDataException($"{file}: not a readable parquet file: {e.Message}", e);
        }
        await using var _ = reader;
        var fields = reader.Schema.GetDataFields();
        var imageField = FindImageField(fields, imageColumn ?? DefaultImageColumn, file, imageColumn != null);
        var captionField = FindCaptionField(fields, captionColumn, file);
        var imagePath = imageField.Path.ToList().ToArray();

        long rowInFile = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            string where = $"{file} row group {g}";
            var captions = await ParquetColumns.ReadStringsAsync(group, captionField, where).ConfigureAwait(false);
            long firstRow = rowInFile;
            int group_ = g;
            await ParquetColumns.ReadBytesAsync(group, imageField, where, (row, bytes) =>
            {
                long fileRow = firstRow + row;
                string name = $"{file} row {fileRow}";
                tally.Row();
                string? caption = captions[row]?.Trim();
                if (string.IsNullOrEmpty(caption)) { tally.Skip(SkipReason.MissingCaption, $"{name}: column '{captionField.Path.ToList()[0]}' is {(caption == null ? "null" : "empty")}"); return; }
                if (bytes is not { } data) { tally.Skip(SkipReason.MissingImage, $"{name}: image column '{string.Join(".", imagePath)}' is null"); return; }
                ImageHeader header;
                try
                {
                    header = ImageDecoder.Inspect(data, name, options.ImageLimits);
                }
                catch (ImageLoadException e)
                {
                    tally.Skip(SkipReason.UnreadableImage, e.Message);
                    return;
                }
                if (!tally.AcceptSize(name, header.Width, header.Height)) return;
                string hash = Convert.ToHexStringLower(SHA256.HashData(data.Span));
                var source = new ParquetImageSource(store, file, group_, row, fileRow, imagePath, hash);
                items.Add(new DatasetItem(items.Count, source, caption, null, header.Width, header.Height));
            }).ConfigureAwait(false);
            rowInFile += group.RowCount;
        }
    }

    static DataField FindImageField(IReadOnlyList<DataField> fields, string column, string file, bool named)
    {
        var direct = fields.FirstOrDefault(f => f.Path.ToList() is [var only] && only == column);
        if (direct != null) return direct;
        var nested = fields.FirstOrDefault(f => f.Path.ToList() is [var top, "bytes"] && top == column);
        if (nested != null) return nested;
        throw new InvalidDataException(
            $"{file}: no image column '{column}' (expected binary, or struct with a 'bytes' field); columns are: {ListColumns(fields)}" +
            (named ? "" : ". Name it with --image_column"));
    }

    static DataField FindCaptionField(IReadOnlyList<DataField> fields, string? column, string file)
    {
        var candidates = column != null ? new[] { column } : DefaultCaptionColumns;
        foreach (var name in candidates)
            if (fields.FirstOrDefault(f => f.Path.ToList() is [var only] && only == name) is { } field) return field;
        throw new InvalidDataException(column != null
            ? $"{file}: no caption column '{column}'; columns are: {ListColumns(fields)}"
            : $"{file}: none of the caption columns {string.Join(", ", DefaultCaptionColumns)} exists; columns are: {ListColumns(fields)}. Name one with --caption_column");
    }

    static string ListColumns(IReadOnlyList<DataField> fields) => string.Join(", ", fields.Select(f => string.Join(".", f.Path.ToList())));
}
