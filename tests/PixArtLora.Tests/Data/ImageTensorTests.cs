using PixArtLora.Data.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Data;

public class ImageTensorTests
{
    [Fact]
    public void EveryByteValueMapsToItsNormalizedValueAndBack()
    {
        using var img = new Image<Rgb24>(256, 1);
        for (int v = 0; v < 256; v++) img[v, 0] = new Rgb24((byte)v, (byte)(255 - v), (byte)(v * 7 & 0xFF));
        using var t = ImageTensors.ToTensor(img);
        Assert.Equal(new long[] { 3, 1, 256 }, t.shape);
        var data = t.data<float>().ToArray();
        for (int v = 0; v < 256; v++)
        {
            // torchvision: ToTensor (v / 255) then Normalize(0.5, 0.5): (v / 255 - 0.5) / 0.5
            Assert.True(Math.Abs((v / 255.0 - 0.5) / 0.5 - data[v]) < 1e-6, $"R {v}: {data[v]}");
            Assert.True(Math.Abs(((255 - v) / 255.0 - 0.5) / 0.5 - data[256 + v]) < 1e-6, $"G {v}: {data[256 + v]}");
            Assert.True(Math.Abs(((v * 7 & 0xFF) / 255.0 - 0.5) / 0.5 - data[512 + v]) < 1e-6, $"B {v}: {data[512 + v]}");
        }
        using var back = ImageTensors.ToImage(t);
        for (int v = 0; v < 256; v++) Assert.Equal(img[v, 0], back[v, 0]);
    }

    [Fact]
    public void TensorToPngToTensorIsExact()
    {
        using var scope = NewDisposeScope();
        using var img = TestImages.Pattern(37, 23);
        var t = ImageTensors.ToTensor(img);
        string path = Path.Combine(TestPaths.NewTempDir("tensor"), "t.png");
        PngImageFile.Save(t.unsqueeze(0), path);
        using var loaded = ImageDecoder.Load(path);
        var again = ImageTensors.ToTensor(loaded);
        Assert.True(t.eq(again).all().item<bool>(), "tensor -> PNG -> tensor changed values");

        // An arbitrary tensor comes back within half a quantisation step, and out-of-range values clamp.
        var noisy = rand(3, 16, 16) * 2.4 - 1.2;
        PngImageFile.Save(noisy, path);
        using var loaded2 = ImageDecoder.Load(path);
        var round = ImageTensors.ToTensor(loaded2);
        var expected = noisy.clamp(-1, 1);
        double worst = (round - expected).abs().max().item<float>();
        Assert.True(worst <= 1 / 255.0 + 1e-6, $"worst error {worst}");
    }

    [Fact]
    public void BatchesDtypesAndBadShapes()
    {
        using var scope = NewDisposeScope();
        using var a = TestImages.Pattern(8, 6, seed: 1);
        using var b = TestImages.Pattern(8, 6, seed: 2);
        var batch = ImageTensors.ToBatch([a, b], ScalarType.BFloat16);
        Assert.Equal(new long[] { 2, 3, 6, 8 }, batch.shape);
        Assert.Equal(ScalarType.BFloat16, batch.dtype);
        var second = ImageTensors.ToTensor(b);
        Assert.True(allclose(batch[1].to(ScalarType.Float32), second, rtol: 0, atol: 0.01), "batch row 1 is image b");

        using var c = TestImages.Pattern(9, 6);
        Assert.Contains("9x6", Assert.Throws<ArgumentException>(() => ImageTensors.ToBatch([a, c])).Message);
        Assert.Contains("[4, 6, 8]", Assert.Throws<ArgumentException>(() => ImageTensors.ToImage(zeros(4, 6, 8))).Message);
        var nan = zeros(3, 2, 2);
        nan[0, 0, 0] = tensor(float.NaN);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => ImageTensors.ToImage(nan)).Message);
    }
}
