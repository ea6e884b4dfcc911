using PixArtLora.Data.Images;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Data;

/// <summary>Each hostile input gives its own clear error naming the file, and never a large allocation.</summary>
public class HostileImageTests
{
    static ImageLoadException LoadFails(string path)
    {
        var e = Assert.Throws<ImageLoadException>(() => { using var _ = ImageDecoder.Load(path); });
        Assert.Equal(path, e.SourceName);
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void ZeroByteFile()
    {
        string path = TestImages.Write(TestPaths.NewTempDir("hostile"), "empty.png", []);
        var e = LoadFails(path);
        Assert.Equal(ImageProblem.Empty, e.Problem);
        Assert.Contains("0 bytes", e.Message);
        Assert.Equal(ImageProblem.Empty, Assert.Throws<ImageLoadException>(() => ImageDecoder.ReadHeader(path)).Problem);
    }

    [Fact]
    public void MissingFileAndNonImage()
    {
        var dir = TestPaths.NewTempDir("hostile");
        Assert.Equal(ImageProblem.Missing, LoadFails(Path.Combine(dir, "nope.png")).Problem);
        string text = TestImages.Write(dir, "notes.png", "this is not an image at all"u8.ToArray());
        var e = LoadFails(text);
        Assert.Equal(ImageProblem.UnknownFormat, e.Problem);
        Assert.Contains("not a PNG, JPEG, WebP, BMP or GIF", e.Message);
    }

    [Fact]
    public void DecompressionBombIsRefusedFromItsHeader()
    {
        var dir = TestPaths.NewTempDir("hostile");
        byte[] bomb = HostileImages.ZeroBomb(20000, 20000);
        Assert.True(bomb.Length < 2_000_000, $"bomb is {bomb.Length} bytes");
        string path = TestImages.Write(dir, "bomb.png", bomb);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = LoadFails(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(ImageProblem.TooLarge, e.Problem);
        Assert.Contains("20000x20000", e.Message);
        Assert.Contains("decompression bomb", e.Message);
        Assert.True(allocated < 64L * 1024 * 1024, $"refusing the bomb allocated {allocated} bytes");

        string headerOnly = TestImages.Write(dir, "claims.png", HostileImages.HeaderOnly(20000, 20000));
        Assert.Equal(ImageProblem.TooLarge, Assert.Throws<ImageLoadException>(() => ImageDecoder.ReadHeader(headerOnly)).Problem);
    }

    [Fact]
    public void LimitsAreConfigurable()
    {
        using var img = TestImages.Pattern(100, 100);
        byte[] png = TestImages.Png(img);
        var tight = new ImageLimits { MaxPixels = 9_999 };
        Assert.Equal(ImageProblem.TooLarge, Assert.Throws<ImageLoadException>(() => ImageDecoder.Decode(png, "x.png", tight)).Problem);
        var small = new ImageLimits { MaxFileBytes = png.Length - 1 };
        Assert.Equal(ImageProblem.TooLarge, Assert.Throws<ImageLoadException>(() => ImageDecoder.Decode(png, "x.png", small)).Problem);
        using var ok = ImageDecoder.Decode(png, "x.png", new ImageLimits { MaxPixels = 10_000 });
        Assert.Equal(100, ok.Width);
    }

    public static TheoryData<string> Formats => new() { "png", "jpeg", "gif", "bmp", "webp-lossy", "webp-lossless" };

    [Theory]
    [MemberData(nameof(Formats))]
    public void TruncatedFileIsRefused(string format)
    {
        using var img = TestImages.Pattern(64, 48);
        byte[] full = format switch
        {
            "png" => TestImages.Png(img),
            "jpeg" => TestImages.Jpeg(img),
            "gif" => TestImages.Gif(img),
            "bmp" => TestImages.Bmp(img),
            "webp-lossy" => TestImages.WebpLossy(img),
            _ => TestImages.WebpLossless(img),
        };
        var dir = TestPaths.NewTempDir("hostile");
        using (var whole = ImageDecoder.Load(TestImages.Write(dir, $"whole.{format}", full))) Assert.Equal(64, whole.Width);

        // Cut at 3/4 (inside the pixel data) and just before the end (only the trailer missing).
        foreach (int length in new[] { full.Length * 3 / 4, full.Length - 1 })
        {
            string path = TestImages.Write(dir, $"cut{length}.{format}", full[..length]);
            var e = LoadFails(path);
            Assert.True(e.Problem is ImageProblem.Truncated or ImageProblem.Corrupt, $"{format} cut to {length}: {e.Problem} {e.Message}");
        }
    }

    [Fact]
    public void TruncatedPngSaysTruncated()
    {
        using var img = TestImages.Pattern(64, 48);
        byte[] full = TestImages.Png(img);
        string path = TestImages.Write(TestPaths.NewTempDir("hostile"), "cut.png", full[..(full.Length - 12)]); // IEND removed
        var e = LoadFails(path);
        Assert.Equal(ImageProblem.Truncated, e.Problem);
        Assert.Contains("IEND", e.Message);
    }

    [Fact]
    public void CorruptPixelDataIsRefused()
    {
        string path = TestImages.Write(TestPaths.NewTempDir("hostile"), "garbage.png", HostileImages.GarbageData(32, 32));
        Assert.Equal((32, 32), (ImageDecoder.ReadHeader(path).Width, ImageDecoder.ReadHeader(path).Height));
        var e = LoadFails(path);
        Assert.Equal(ImageProblem.Corrupt, e.Problem);

        using var img = TestImages.Pattern(32, 32);
        byte[] jpeg = TestImages.Jpeg(img);
        for (int i = 2; i < 40; i++) jpeg[i] = 0x5A; // overwrite the segment headers after SOI
        var e2 = Assert.Throws<ImageLoadException>(() => ImageDecoder.Decode(jpeg, "mangled.jpg"));
        Assert.Contains("mangled.jpg", e2.Message);
    }
}
