using PixArtLora.Data.Images;

namespace PixArtLora.Data;

/// <summary>How strictly a dataset is screened when it is opened.</summary>
public sealed record DatasetLoadOptions
{
    /// <summary>Images whose shorter side is below this many pixels are skipped as too small.</summary>
    public int MinImageSide { get; init; } = 64;

    /// <summary>
    /// Images whose height/width or width/height exceeds this are skipped (not counted as bad). The official
    /// PixArt-Σ trainer drops label entries with ratio &gt; 4.5 (α: 4); the bin tables end at 4 and 0.25.
    /// </summary>
    public double MaxAspectRatio { get; init; } = 4.5;

    /// <summary>Opening fails when more than this fraction of rows is unusable (missing caption or image, unreadable, too small).</summary>
    public double MaxBadFraction { get; init; } = 0.1;

    /// <summary>Header limits applied to every image (decompression-bomb guard).</summary>
    public ImageLimits ImageLimits { get; init; } = ImageLimits.Default;

    /// <summary>Where warnings about skipped rows go; null silences them (they are still counted in the report).</summary>
    public Action<string>? Warn { get; init; } = message => Console.Error.WriteLine($"warning: {message}");

    /// <summary>How many skipped rows are reported one by one before the rest are only counted.</summary>
    public int MaxWarnings { get; init; } = 20;

    /// <summary>The defaults.</summary>
    public static DatasetLoadOptions Default { get; } = new();
}
