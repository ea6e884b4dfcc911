using PixArtLora.Data.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Data;

public class ImageDecoderTests
{
    static void AssertPixels(Image<Rgb24> expected, Image<Rgb24> actual, int tolerance, string what)
    {
        Assert.Equal(expected.Width, actual.Width);
        Assert.Equal(expected.Height, actual.Height);
        int worst = 0;
        for (int y = 0; y < expected.Height; y++)
            for (int x = 0; x < expected.Width; x++)
            {
                var e = expected[x, y]; var a = actual[x, y];
                worst = Math.Max(worst, Math.Max(Math.Abs(e.R - a.R), Math.Max(Math.Abs(e.G - a.G), Math.Abs(e.B - a.B))));
            }
        Assert.True(worst <= tolerance, $"{what}: worst channel difference {worst} > {tolerance}");
    }

    [Theory]
    [InlineData("png", 0)]
    [InlineData("bmp", 0)]
    [InlineData("webp-lossless", 0)]
    [InlineData("jpeg", 12)]
    [InlineData("webp-lossy", 16)]
    public void DecodesRgbFormats(string format, int tolerance)
    {
        using var source = format.Contains("lossy") ? TestImages.Smooth(40, 24) : TestImages.Pattern(40, 24);
        byte[] bytes = format switch
        {
            "png" => TestImages.Png(source),
            "bmp" => TestImages.Bmp(source),
            "webp-lossless" => TestImages.WebpLossless(source),
            "jpeg" => TestImages.Encode(source, new JpegEncoder { Quality = 100, ColorType = JpegColorType.YCbCrRatio444 }),
            _ => TestImages.WebpLossy(source),
        };
        string path = TestImages.Write(TestPaths.NewTempDir("img"), $"a.{format}", bytes);
        var header = ImageDecoder.ReadHeader(path);
        Assert.Equal((40, 24), (header.Width, header.Height));
        using var decoded = ImageDecoder.Load(path);
        AssertPixels(source, decoded, tolerance, format);
    }

    [Fact]
    public void GifPaletteDecodesExactly()
    {
        // Four colours survive GIF's palette quantisation unchanged.
        Rgb24[] colors = [new(255, 0, 0), new(0, 128, 255), new(20, 200, 60), new(250, 250, 10)];
        using var source = new Image<Rgb24>(16, 8);
        for (int y = 0; y < 8; y++) for (int x = 0; x < 16; x++) source[x, y] = colors[(x / 4 + y / 4) % 4];
        using var decoded = ImageDecoder.Decode(TestImages.Gif(source), "test.gif");
        AssertPixels(source, decoded, 0, "gif");
    }

    [Fact]
    public void GrayscalePaletteAndSixteenBitPngsBecomeRgb()
    {
        using var gray = new Image<L8>(9, 5);
        for (int y = 0; y < 5; y++) for (int x = 0; x < 9; x++) gray[x, y] = new L8((byte)(x * 25 + y));
        using var fromGray = ImageDecoder.Decode(TestImages.Encode(gray, new PngEncoder { ColorType = PngColorType.Grayscale }), "gray.png");
        Assert.Equal(new Rgb24(203, 203, 203), fromGray[8, 3]);

        using var pal = TestImages.Solid(6, 6, new Rgb24(10, 20, 30));
        pal[2, 2] = new Rgb24(200, 100, 50);
        using var fromPalette = ImageDecoder.Decode(TestImages.Encode(pal, new PngEncoder { ColorType = PngColorType.Palette }), "pal.png");
        Assert.Equal(new Rgb24(200, 100, 50), fromPalette[2, 2]);
        Assert.Equal(new Rgb24(10, 20, 30), fromPalette[0, 5]);

        using var deep = new Image<Rgb48>(3, 2);
        deep[1, 1] = new Rgb48(257 * 17, 257 * 130, 257 * 251); // 16-bit values that are exact 8-bit values
        using var fromDeep = ImageDecoder.Decode(TestImages.Encode(deep, new PngEncoder { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit16 }), "deep.png");
        Assert.Equal(new Rgb24(17, 130, 251), fromDeep[1, 1]);
    }

    [Fact]
    public void AlphaIsDroppedNotComposited()
    {
        // PIL's convert("RGB"), used by the reference trainers, keeps the colour of transparent pixels.
        using var rgba = new Image<Rgba32>(4, 4);
        rgba[0, 0] = new Rgba32(10, 20, 30, 0);
        rgba[1, 0] = new Rgba32(200, 150, 100, 128);
        using var decoded = ImageDecoder.Decode(TestImages.Encode(rgba, new PngEncoder { ColorType = PngColorType.RgbWithAlpha }), "alpha.png");
        Assert.Equal(new Rgb24(10, 20, 30), decoded[0, 0]);
        Assert.Equal(new Rgb24(200, 150, 100), decoded[1, 0]);
    }

    [Fact]
    public void CmykJpegBecomesRgb()
    {
        // Adobe-inverted stored values: (0,255,255,255) is full cyan, (255,255,255,255) white, (255,255,255,0) full black.
        var blocks = new (byte, byte, byte, byte)[1, 3] { { (0, 255, 255, 255), (255, 255, 255, 255), (255, 255, 255, 0) } };
        byte[] jpeg = CmykJpeg.Encode(blocks);
        Assert.Equal(4, jpeg[Array.IndexOf(jpeg, (byte)0xC0, 2) + 8]); // SOF0 declares 4 components
        using var decoded = ImageDecoder.Decode(jpeg, "cmyk.jpg");
        Assert.Equal((24, 8), (decoded.Width, decoded.Height));
        AssertNear(new Rgb24(0, 255, 255), decoded[3, 3]);
        AssertNear(new Rgb24(255, 255, 255), decoded[11, 3]);
        AssertNear(new Rgb24(0, 0, 0), decoded[19, 3]);

        static void AssertNear(Rgb24 e, Rgb24 a) =>
            Assert.True(Math.Abs(e.R - a.R) <= 2 && Math.Abs(e.G - a.G) <= 2 && Math.Abs(e.B - a.B) <= 2, $"expected {e}, got {a}");
    }
}
