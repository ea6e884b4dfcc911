using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Data.Images;

/// <summary>An image's size and container format, read from its header without decoding pixels.</summary>
public readonly record struct ImageHeader(int Width, int Height, string Format);

/// <summary>
/// Reads training images safely: PNG, JPEG, WebP, BMP and GIF (first frame) become 8-bit RGB whatever their
/// colour model (RGBA, grayscale, palette, CMYK/YCCK). Every failure is an <see cref="ImageLoadException"/> naming
/// the source; the header is checked against <see cref="ImageLimits"/> before a pixel buffer is allocated.
/// Alpha is dropped, not composited, as PIL's <c>convert("RGB")</c> does in the reference trainers.
/// EXIF orientation is not applied, also as in the reference loaders (torchvision's default_loader).
/// </summary>
public static class ImageDecoder
{
    // Only the five formats we promise; TIFF/TGA/PBM decoders are left out to keep the attack surface small.
    // The allocation limit is a backstop behind the header check (ImageSharp's default is 4 GB per buffer).
    static readonly Configuration Decoding = CreateConfiguration();

    static Configuration CreateConfiguration()
    {
        var c = new Configuration(new PngConfigurationModule(), new JpegConfigurationModule(), new GifConfigurationModule(),
            new BmpConfigurationModule(), new WebpConfigurationModule());
        c.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First });
        c.MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions { AllocationLimitMegabytes = 2048 });
        return c;
    }

    /// <summary>Reads the header of the image file at <paramref name="path"/> (only as many bytes as the format needs).</summary>
    public static ImageHeader ReadHeader(string path, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        CheckFileSize(path, limits);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024);
            return Identify(() => Image.Identify(Decoding, stream, out var f) is { } info ? (info, f) : (null, null), path, limits);
        }
        catch (IOException e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ImageLoadException(path, ImageProblem.Missing, "file not found", e);
        }
    }

    /// <summary>Reads the header of an encoded image held in memory; <paramref name="source"/> names it in errors.</summary>
    public static ImageHeader ReadHeader(ReadOnlyMemory<byte> data, string source, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        if (data.Length == 0) throw new ImageLoadException(source, ImageProblem.Empty, "image is empty (0 bytes)");
        if (data.Length > limits.MaxFileBytes) throw TooManyBytes(source, data.Length, limits);
        using var stream = MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);
        return Identify(() => Image.Identify(Decoding, stream, out var f) is { } info ? (info, f) : (null, null), source, limits);
    }

    /// <summary>
    /// Reads the header and checks that the bytes are structurally complete (not truncated), without decoding
    /// pixels: what a dataset scan can afford for every image whose bytes are already in memory.
    /// </summary>
    public static ImageHeader Inspect(ReadOnlyMemory<byte> data, string source, ImageLimits? limits = null)
    {
        var header = ReadHeader(data, source, limits);
        if (ImageIntegrity.FindTruncation(data.Span, header.Format) is { } why)
            throw new ImageLoadException(source, ImageProblem.Truncated, $"truncated {header.Format}: {why}");
        return header;
    }

    /// <summary>Decodes the image file at <paramref name="path"/> to RGB.</summary>
    public static Image<Rgb24> Load(string path, ImageLimits? limits = null) =>
        Decode(ReadFileBytes(path, limits ?? ImageLimits.Default), path, limits);

    /// <summary>Decodes encoded image bytes to RGB; <paramref name="source"/> names the image in errors.</summary>
    public static Image<Rgb24> Decode(byte[] data, string source, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        var header = Inspect(data, source, limits);
        try
        {
            return Image.Load<Rgb24>(Decoding, data);
        }
        catch (InvalidMemoryOperationException e)
        {
            throw new ImageLoadException(source, ImageProblem.TooLarge, $"{header.Format} {header.Width}x{header.Height} needs more memory than allowed", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Decoders fed hostile bytes can throw anything (format, index, arithmetic errors): all mean "corrupt".
            throw new ImageLoadException(source, ImageProblem.Corrupt, $"corrupt {header.Format} {header.Width}x{header.Height}: {e.Message}", e);
        }
    }

    /// <summary>Reads a whole image file, refusing empty, missing and over-limit files with an <see cref="ImageLoadException"/>.</summary>
    public static byte[] ReadFileBytes(string path, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        CheckFileSize(path, limits);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (IOException e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ImageLoadException(path, ImageProblem.Missing, "file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageLoadException(path, ImageProblem.Missing, $"cannot read file: {e.Message}", e);
        }
    }

    static void CheckFileSize(string path, ImageLimits limits)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new ImageLoadException(path, ImageProblem.Missing, "file not found");
        if (info.Length == 0) throw new ImageLoadException(path, ImageProblem.Empty, "image file is empty (0 bytes)");
        if (info.Length > limits.MaxFileBytes) throw TooManyBytes(path, info.Length, limits);
    }

    static ImageLoadException TooManyBytes(string source, long length, ImageLimits limits) =>
        new(source, ImageProblem.TooLarge, $"image is {length} bytes, more than the limit of {limits.MaxFileBytes} bytes");

    static ImageHeader Identify(Func<(IImageInfo? Info, IImageFormat? Format)> identify, string source, ImageLimits limits)
    {
        IImageInfo? info; IImageFormat? format;
        try
        {
            (info, format) = identify();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ImageLoadException(source, ImageProblem.Corrupt, $"unreadable image header: {e.Message}", e);
        }
        if (info == null || format == null)
            throw new ImageLoadException(source, ImageProblem.UnknownFormat, "not a PNG, JPEG, WebP, BMP or GIF image");
        string name = format.Name.ToUpperInvariant();
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageLoadException(source, ImageProblem.Corrupt, $"{name} header declares an empty size {info.Width}x{info.Height}");
        long pixels = (long)info.Width * info.Height;
        if (pixels > limits.MaxPixels)
            throw new ImageLoadException(source, ImageProblem.TooLarge,
                $"{name} header declares {info.Width}x{info.Height} = {pixels} pixels, more than the limit of {limits.MaxPixels} (possible decompression bomb)");
        return new ImageHeader(info.Width, info.Height, name);
    }
}
