namespace PixArtLora.Data.Images;

/// <summary>
/// Upper bounds checked on an image's header before any pixel is decoded, so a hostile or broken file
/// (a 20000×20000 PNG of zeros compresses to about a megabyte) gives an error instead of exhausting memory.
/// </summary>
public sealed record ImageLimits
{
    /// <summary>Most pixels (width × height) an image may declare. The default, 100 MP, is 300 MB as RGB and admits any camera photo.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Largest encoded file accepted, in bytes (read fully into memory before decoding).</summary>
    public long MaxFileBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>The defaults.</summary>
    public static ImageLimits Default { get; } = new();
}
