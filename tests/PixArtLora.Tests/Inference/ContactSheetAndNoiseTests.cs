using PixArtLora.Inference;
using PixArtLora.Tests.Parity;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Inference;

public class ContactSheetAndNoiseTests
{
    [Fact]
    public void SheetPlacesImagesRowMajorInANearSquareGrid()
    {
        var colors = new[] { new Rgb24(255, 0, 0), new Rgb24(0, 255, 0), new Rgb24(0, 0, 255) };
        var images = colors.Select(c => new Image<Rgb24>(4, 3, c)).ToList();
        using var sheet = ContactSheet.Compose(images);
        Assert.Equal((8, 6), (sheet.Width, sheet.Height));
        Assert.Equal(colors[0], sheet[1, 1]);
        Assert.Equal(colors[1], sheet[5, 1]);
        Assert.Equal(colors[2], sheet[1, 4]);
        Assert.Equal(new Rgb24(0, 0, 0), sheet[5, 4]);
        foreach (var i in images) i.Dispose();
        Assert.Equal(3, ContactSheet.ColumnsFor(9));
        Assert.Equal(4, ContactSheet.ColumnsFor(10));
    }

    [Fact]
    public void EachRowDrawsFromItsOwnSeed()
    {
        using var noise = new PerImageNoise(new long[] { 5, 9 });
        using var batch = noise.Next(new long[] { 2, 4, 3, 3 }, float32, CPU);
        using var g5 = new Generator(5);
        using var g9 = new Generator(9);
        using var alone5 = randn(new long[] { 1, 4, 3, 3 }, generator: g5);
        using var alone9 = randn(new long[] { 1, 4, 3, 3 }, generator: g9);
        TensorAssert.Equal(batch[0].unsqueeze(0), alone5, "ContactSheetAndNoiseTests#1");
        TensorAssert.Equal(batch[1].unsqueeze(0), alone9, "ContactSheetAndNoiseTests#2");
        Assert.Throws<ArgumentException>(() => noise.Next(new long[] { 3, 4 }, float32, CPU));
    }

    [Fact]
    public void QuantisationRoundsLikeNumpy()
    {
        // (x * 255).round() with round-half-to-even after clamping to [0, 1]: 0.5 → 127.5 → 128.
        using var t = tensor(new float[] { 0.5f, 1.2f, -0.3f, 0.2f, 0.4f, 0f, 1f, 0f, 0.25f }).view(3, 1, 3);
        using var image = ImageConversion.ToRgb24(t);
        Assert.Equal(new Rgb24(128, 51, 255), image[0, 0]);
        Assert.Equal(new Rgb24(255, 102, 0), image[1, 0]);
        Assert.Equal(new Rgb24(0, 0, 64), image[2, 0]);
    }
}
