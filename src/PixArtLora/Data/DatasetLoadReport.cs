using System.Globalization;

namespace PixArtLora.Data;

/// <summary>Why a dataset row was not used.</summary>
public enum SkipReason
{
    /// <summary>No caption, or an empty one.</summary>
    MissingCaption,
    /// <summary>The image is absent: a null parquet cell, a label pointing at no file.</summary>
    MissingImage,
    /// <summary>The image cannot be read: empty, truncated, corrupt, unknown format or over the size limits.</summary>
    UnreadableImage,
    /// <summary>The shorter side is below <see cref="DatasetLoadOptions.MinImageSide"/>.</summary>
    ImageTooSmall,
    /// <summary>The aspect ratio is beyond <see cref="DatasetLoadOptions.MaxAspectRatio"/> (filtered, not counted as bad).</summary>
    ExtremeAspectRatio,
}

/// <summary>What opening a dataset found: rows read, kept, and skipped by reason, with the first messages.</summary>
public sealed class DatasetLoadReport(string source, int rows, IReadOnlyDictionary<SkipReason, int> skipped, IReadOnlyList<string> messages)
{
    /// <summary>What was read.</summary>
    public string Source { get; } = source;

    /// <summary>Rows (label entries, files) examined.</summary>
    public int Rows { get; } = rows;

    /// <summary>Skipped rows per reason (reasons with no rows are absent).</summary>
    public IReadOnlyDictionary<SkipReason, int> Skipped { get; } = skipped;

    /// <summary>The first messages about skipped rows, each naming the row and the problem.</summary>
    public IReadOnlyList<string> Messages { get; } = messages;

    /// <summary>Rows kept as items.</summary>
    public int Kept => Rows - Skipped.Values.Sum();

    /// <summary>Rows that are unusable because something is wrong with them (all reasons but the aspect-ratio filter).</summary>
    public int Bad => Skipped.Where(kv => kv.Key != SkipReason.ExtremeAspectRatio).Sum(kv => kv.Value);

    /// <summary>Skipped count for one reason.</summary>
    public int SkippedFor(SkipReason reason) => Skipped.TryGetValue(reason, out int n) ? n : 0;

    /// <summary>One line for the log, e.g. "pokemon: kept 830 of 833 rows (skipped: 2 missing caption, 1 unreadable image)".</summary>
    public string Summary
    {
        get
        {
            var parts = Skipped.Where(kv => kv.Value > 0).OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} {Describe(kv.Key)}").ToList();
            return $"{Source}: kept {Kept} of {Rows} rows" + (parts.Count > 0 ? $" (skipped: {string.Join(", ", parts)})" : "");
        }
    }

    internal static string Describe(SkipReason reason) => reason switch
    {
        SkipReason.MissingCaption => "missing caption",
        SkipReason.MissingImage => "missing image",
        SkipReason.UnreadableImage => "unreadable image",
        SkipReason.ImageTooSmall => "image too small",
        SkipReason.ExtremeAspectRatio => "extreme aspect ratio",
        _ => reason.ToString(),
    };
}

/// <summary>Counts rows while a dataset is scanned, warns about skipped ones, and enforces the bad-row limit.</summary>
internal sealed class DatasetScanTally(string source, DatasetLoadOptions options)
{
    const int MaxStoredMessages = 200;
    readonly Dictionary<SkipReason, int> _skipped = new();
    readonly List<string> _messages = new();
    int _rows;

    public void Row() => _rows++;

    public void Skip(SkipReason reason, string message)
    {
        _skipped[reason] = _skipped.GetValueOrDefault(reason) + 1;
        int total = _skipped.Values.Sum();
        string full = $"skipping {message} ({DatasetLoadReport.Describe(reason)})";
        if (_messages.Count < MaxStoredMessages) _messages.Add(full);
        if (total <= options.MaxWarnings) options.Warn?.Invoke(full);
    }

    /// <summary>Checks the size rules shared by every source; false (and counted) when the row is skipped.</summary>
    public bool AcceptSize(string row, int width, int height)
    {
        if (Math.Min(width, height) < options.MinImageSide)
        {
            Skip(SkipReason.ImageTooSmall, $"{row}: image is {width}x{height}, shorter side below {options.MinImageSide}");
            return false;
        }
        double ratio = Math.Max((double)height / width, (double)width / height);
        if (ratio > options.MaxAspectRatio)
        {
            Skip(SkipReason.ExtremeAspectRatio, $"{row}: image is {width}x{height}, aspect ratio {ratio.ToString("0.##", CultureInfo.InvariantCulture)} beyond {options.MaxAspectRatio.ToString(CultureInfo.InvariantCulture)}");
            return false;
        }
        return true;
    }

    /// <summary>The report; throws when too many rows were bad or nothing is left.</summary>
    public DatasetLoadReport Finish()
    {
        var report = new DatasetLoadReport(source, _rows, new Dictionary<SkipReason, int>(_skipped), _messages.ToArray());
        int total = _skipped.Values.Sum();
        if (total > options.MaxWarnings) options.Warn?.Invoke($"... {total - options.MaxWarnings} more rows skipped");
        if (report.Rows > 0 && report.Bad > options.MaxBadFraction * report.Rows)
            throw new InvalidDataException(
                $"{source}: {report.Bad} of {report.Rows} rows are unusable, more than the allowed fraction {options.MaxBadFraction.ToString(CultureInfo.InvariantCulture)} " +
                $"({report.Summary}). First problems: {string.Join("; ", _messages.Take(5))}. " +
                "Check the caption/image column names and the files, or raise the allowed fraction.");
        if (report.Kept == 0)
            throw new InvalidDataException($"{source}: no usable items ({report.Summary})");
        return report;
    }
}
