using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>One image of a generated batch: its prompt and seed.</summary>
public sealed record GeneratedImageInfo(int Index, string Prompt, long Seed);

/// <summary>What <see cref="PixArtPipeline.Generate"/> made: the images and how they were made.</summary>
public sealed class GenerationResult : IDisposable
{
    /// <summary>
    /// The images [N, 3, H, W], float32 in [0, 1] on the CPU: diffusers' <c>output_type="pt"</c>,
    /// i.e. clamp(decoded / 2 + 0.5, 0, 1) at the requested size.
    /// </summary>
    public Tensor Images { get; }

    /// <summary>Prompt and seed of each image, in batch order.</summary>
    public IReadOnlyList<GeneratedImageInfo> Items { get; }

    /// <summary>Requested and generated size.</summary>
    public GenerationSize Size { get; }

    /// <summary>Sampler, steps and guidance actually used.</summary>
    public SamplingChoice Sampling { get; }

    /// <summary>Negative prompt used for the unconditional branch (null when embeddings were given).</summary>
    public string? NegativePrompt { get; }

    internal GenerationResult(Tensor images, IReadOnlyList<GeneratedImageInfo> items, GenerationSize size, SamplingChoice sampling, string? negativePrompt)
    {
        Images = images;
        Items = items;
        Size = size;
        Sampling = sampling;
        NegativePrompt = negativePrompt;
    }

    /// <summary>Number of images.</summary>
    public int Count => Items.Count;

    /// <summary>Image <paramref name="index"/> as 8-bit RGB: round(value × 255), as diffusers' numpy_to_pil.</summary>
    public Image<Rgb24> ToImage(int index) => ImageConversion.ToRgb24(Images[index]);

    public void Dispose() => Images.Dispose();
}

/// <summary>Float image tensors in [0, 1] to 8-bit images and back.</summary>
public static class ImageConversion
{
    /// <summary>
    /// [3, H, W] in [0, 1] → 8-bit RGB with diffusers' quantisation (<c>(x * 255).round()</c>, round half to even;
    /// values outside [0, 1] are clamped first).
    /// </summary>
    public static Image<Rgb24> ToRgb24(Tensor image)
    {
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"image tensor: shape [{string.Join(", ", image.shape)}], expected [3, H, W]");
        int height = (int)image.shape[1], width = (int)image.shape[2];
        byte[] bytes;
        using (var scope = NewDisposeScope())
        {
            var hwc = (image.to(float32).clamp(0, 1) * 255).round().to(uint8).permute(1, 2, 0).contiguous().cpu();
            bytes = hwc.data<byte>().ToArray();
        }
        return Image.LoadPixelData<Rgb24>(bytes, width, height);
    }
}
