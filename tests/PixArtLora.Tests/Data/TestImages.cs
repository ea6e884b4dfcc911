using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Data;

/// <summary>Synthetic test images with known pixels, encoded by ImageSharp's own encoders.</summary>
internal static class TestImages
{
    /// <summary>Pixel (x, y) of <see cref="Pattern"/>: every channel different, so crops, flips and channel order show.</summary>
    public static Rgb24 PatternPixel(int x, int y, int seed = 0) =>
        new((byte)((x * 7 + y * 3 + seed * 11) & 0xFF), (byte)((x * 2 + y * 9 + 40 + seed) & 0xFF), (byte)((x * 5 + y + 200 + seed * 3) & 0xFF));

    public static Image<Rgb24> Pattern(int width, int height, int seed = 0)
    {
        var img = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                img[x, y] = PatternPixel(x, y, seed);
        return img;
    }

    /// <summary>A smooth gradient, for lossy codecs (the pattern's sharp wrap-arounds are what lossy coding blurs).</summary>
    public static Image<Rgb24> Smooth(int width, int height)
    {
        var img = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                img[x, y] = new Rgb24((byte)(x * 255 / (width - 1)), (byte)(y * 255 / (height - 1)), 128);
        return img;
    }

    public static Image<Rgb24> Solid(int width, int height, Rgb24 color)
    {
        var img = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                img[x, y] = color;
        return img;
    }

    public static byte[] Encode<TPixel>(Image<TPixel> image, IImageEncoder encoder) where TPixel : unmanaged, IPixel<TPixel>
    {
        using var ms = new MemoryStream();
        image.Save(ms, encoder);
        return ms.ToArray();
    }

    public static byte[] Png(Image<Rgb24> image) => Encode(image, new PngEncoder { ColorType = PngColorType.Rgb });
    public static byte[] Jpeg(Image<Rgb24> image, int quality = 95) => Encode(image, new JpegEncoder { Quality = quality });
    public static byte[] Bmp(Image<Rgb24> image) => Encode(image, new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel24 });
    public static byte[] WebpLossless(Image<Rgb24> image) => Encode(image, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless });
    public static byte[] WebpLossy(Image<Rgb24> image) => Encode(image, new WebpEncoder { FileFormat = WebpFileFormatType.Lossy, Quality = 90 });
    public static byte[] Gif(Image<Rgb24> image) => Encode(image, new GifEncoder());

    /// <summary>Writes bytes to a new file in <paramref name="dir"/> and returns its path.</summary>
    public static string Write(string dir, string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
