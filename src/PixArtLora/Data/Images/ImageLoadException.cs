namespace PixArtLora.Data.Images;

/// <summary>What was wrong with an image that could not be read.</summary>
public enum ImageProblem
{
    /// <summary>The file or byte blob holds no bytes at all.</summary>
    Empty,
    /// <summary>The bytes are not PNG, JPEG, WebP, BMP or GIF.</summary>
    UnknownFormat,
    /// <summary>The image ends before its format says it should (a cut-off download or copy).</summary>
    Truncated,
    /// <summary>The bytes are damaged: the decoder rejected them.</summary>
    Corrupt,
    /// <summary>The header declares more pixels (or a bigger file) than <see cref="ImageLimits"/> allow: a possible decompression bomb.</summary>
    TooLarge,
    /// <summary>The file does not exist or cannot be opened.</summary>
    Missing,
}

/// <summary>
/// An image could not be read. <see cref="SourceName"/> names the file (or the parquet row) so a user can find it;
/// datasets catch this to skip the item with a counted warning instead of stopping training.
/// </summary>
public sealed class ImageLoadException(string source, ImageProblem problem, string detail, Exception? inner = null)
    : Exception($"{source}: {detail}", inner)
{
    /// <summary>The file path or dataset row the image came from.</summary>
    public string SourceName { get; } = source;

    /// <summary>The kind of failure, for counting and for tests.</summary>
    public ImageProblem Problem { get; } = problem;
}
