using System.Security.Cryptography;
using PixArtLora.Data.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Data;

/// <summary>Where a dataset item's encoded image bytes come from: a file, or a row of a parquet file.</summary>
public interface IImageSource
{
    /// <summary>Names the image for messages: a file path, or "file.parquet row N".</summary>
    string Name { get; }

    /// <summary>The encoded bytes (PNG, JPEG, ...). Throws <see cref="ImageLoadException"/> when they cannot be read.</summary>
    byte[] ReadBytes();

    /// <summary>
    /// Lower-case hex SHA-256 of the encoded bytes. With an <see cref="ImageTransformPlan.CacheKey"/> it keys cached
    /// features: it changes whenever the image content changes, whatever the file is called.
    /// </summary>
    string ContentHash();
}

/// <summary>An image stored as a file on disk.</summary>
public sealed class FileImageSource(string path, ImageLimits? limits = null) : IImageSource
{
    string? _hash;
    readonly ImageLimits _limits = limits ?? ImageLimits.Default;

    /// <summary>The full path of the file.</summary>
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    /// <inheritdoc/>
    public string Name => Path;

    /// <inheritdoc/>
    public byte[] ReadBytes() => ImageDecoder.ReadFileBytes(Path, _limits);

    /// <inheritdoc/>
    public string ContentHash() => _hash ??= Convert.ToHexStringLower(SHA256.HashData(ReadBytes()));
}

/// <summary>Decoding helpers for any <see cref="IImageSource"/>.</summary>
public static class ImageSourceExtensions
{
    /// <summary>Reads and decodes the image to RGB; every failure is an <see cref="ImageLoadException"/> naming the source.</summary>
    public static Image<Rgb24> Decode(this IImageSource source, ImageLimits? limits = null) =>
        ImageDecoder.Decode(source.ReadBytes(), source.Name, limits);
}
