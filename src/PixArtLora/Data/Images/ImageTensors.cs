using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Data.Images;

/// <summary>
/// Converts between 8-bit RGB images and float tensors [3, H, W] in [-1, 1] (torchvision ToTensor then
/// Normalize(0.5, 0.5)). The quantisation is defined so that image → tensor → image is exact:
/// a byte v maps to v / 127.5 − 1, and a value x maps back to round((x + 1) · 127.5) clamped to 0..255
/// (diffusers' postprocess: (x / 2 + 0.5).clamp(0, 1) · 255, rounded).
/// </summary>
public static class ImageTensors
{
    /// <summary>The tensor value of an 8-bit channel value.</summary>
    public static float Dequantize(byte value) => value / 127.5f - 1f;

    /// <summary>The 8-bit channel value of a tensor value in [-1, 1]; values outside are clamped. NaN is an error.</summary>
    public static byte Quantize(float value)
    {
        if (float.IsNaN(value)) throw new ArgumentException("image tensor contains NaN");
        return (byte)Math.Clamp(Math.Round((value + 1.0) * 127.5, MidpointRounding.ToEven), 0, 255);
    }

    /// <summary>An image as a tensor [3, H, W] in [-1, 1], created on <paramref name="device"/> with <paramref name="dtype"/>.</summary>
    public static Tensor ToTensor(Image<Rgb24> image, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var t = torch.empty(new long[] { 3, image.Height, image.Width }, ScalarType.Float32);
        FillPlanar(image, t);
        return ToDevice(t, dtype, device);
    }

    /// <summary>Images of one size as a batch [B, 3, H, W] in [-1, 1].</summary>
    public static Tensor ToBatch(IReadOnlyList<Image<Rgb24>> images, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (images.Count == 0) throw new ArgumentException("cannot batch zero images");
        int w = images[0].Width, h = images[0].Height;
        for (int i = 0; i < images.Count; i++)
            if (images[i].Width != w || images[i].Height != h)
                throw new ArgumentException($"image {i} is {images[i].Width}x{images[i].Height}, the batch is {w}x{h}");
        var t = torch.empty(new long[] { images.Count, 3, h, w }, ScalarType.Float32);
        for (int i = 0; i < images.Count; i++)
        {
            using var slot = t[i];
            FillPlanar(images[i], slot);
        }
        return ToDevice(t, dtype, device);
    }

    /// <summary>An image from a tensor [3, H, W] or [1, 3, H, W] in [-1, 1] (any float dtype, any device).</summary>
    public static Image<Rgb24> ToImage(Tensor image)
    {
        var shape = image.shape;
        if (shape.Length == 4 && shape[0] == 1) shape = shape[1..];
        if (shape.Length != 3 || shape[0] != 3)
            throw new ArgumentException($"image tensor has shape [{string.Join(", ", image.shape)}], expected [3, H, W] or [1, 3, H, W]");
        int h = checked((int)shape[1]), w = checked((int)shape[2]);
        var pixels = new Rgb24[h * w];
        int plane = h * w;
        using (var scope = torch.NewDisposeScope())
        {
            var values = MemoryMarshal.Cast<byte, float>(image.detach().to(ScalarType.Float32, CPU).contiguous().bytes);
            for (int i = 0; i < plane; i++)
                pixels[i] = new Rgb24(Quantize(values[i]), Quantize(values[plane + i]), Quantize(values[2 * plane + i]));
        }
        return Image.LoadPixelData<Rgb24>(pixels, w, h);
    }

    static readonly float[] ByteToValue = Enumerable.Range(0, 256).Select(v => Dequantize((byte)v)).ToArray();

    // Writes straight into the new tensor's CPU storage through a lookup table, instead of filling a float[] that
    // torch.tensor then copies again.
    static void FillPlanar(Image<Rgb24> image, Tensor target)
    {
        int w = image.Width, h = image.Height, plane = w * h;
        var pixels = new Rgb24[plane];
        image.CopyPixelDataTo(pixels);
        var dest = MemoryMarshal.Cast<byte, float>(target.bytes);
        var r = dest[..plane];
        var g = dest.Slice(plane, plane);
        var b = dest.Slice(2 * plane, plane);
        for (int i = 0; i < plane; i++)
        {
            var p = pixels[i];
            r[i] = ByteToValue[p.R];
            g[i] = ByteToValue[p.G];
            b[i] = ByteToValue[p.B];
        }
    }

    static Tensor ToDevice(Tensor t, ScalarType dtype, Device? device)
    {
        if (dtype == ScalarType.Float32 && (device == null || device.type == DeviceType.CPU)) return t;
        using (t) return t.to(dtype, device ?? CPU);
    }
}
