using PixArtLora.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>
/// The size an image is requested at and the size the transformer generates it at. Without binning both are the
/// same; with binning the generated size is the table's bin and the decoded image is resized back to the request.
/// </summary>
/// <param name="Width">Requested width in pixels (what the caller gets back).</param>
/// <param name="Height">Requested height in pixels.</param>
/// <param name="GeneratedWidth">Width the latents are generated at (a multiple of 8 × patch size).</param>
/// <param name="GeneratedHeight">Height the latents are generated at.</param>
public readonly record struct GenerationSize(int Width, int Height, int GeneratedWidth, int GeneratedHeight)
{
    /// <summary>True when the decoded image must be resized and cropped back to the requested size.</summary>
    public bool NeedsResize => Width != GeneratedWidth || Height != GeneratedHeight;

    public override string ToString() => NeedsResize
        ? $"{Width}x{Height} (generated at {GeneratedWidth}x{GeneratedHeight})"
        : $"{Width}x{Height}";
}

/// <summary>
/// diffusers' resolution binning for the PixArt pipelines: <c>classify_height_width_bin</c> snaps a requested size to
/// the aspect-ratio bin whose ratio (height / width) is closest, and <c>resize_and_crop_tensor</c> brings the decoded
/// image back to the request (bilinear resize so that it covers the request, then a centre crop).
/// </summary>
public static class ResolutionBinning
{
    /// <summary>
    /// The generation size for a request. With <paramref name="table"/> null (binning off) the request itself, which
    /// must then be a multiple of <paramref name="sizeMultiple"/> (VAE factor × patch size) on both sides.
    /// </summary>
    public static GenerationSize Plan(int width, int height, AspectRatioTable? table, int sizeMultiple)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"image size {width}x{height}: width and height must be positive");
        if (table is not null)
        {
            var bin = table.Nearest(height, width);
            return new GenerationSize(width, height, bin.Width, bin.Height);
        }
        if (width % sizeMultiple != 0 || height % sizeMultiple != 0)
            throw new ArgumentException(
                $"image size {width}x{height}: width and height must be multiples of {sizeMultiple} (VAE factor 8 × patch size) " +
                "when resolution binning is off; pick such a size or turn binning on (use_resolution_binning: true)");
        return new GenerationSize(width, height, width, height);
    }

    /// <summary>
    /// diffusers' <c>resize_and_crop_tensor</c>: images [B, C, h, w] scaled by max(H/h, W/w) with bilinear
    /// interpolation (align_corners false, no antialiasing), then centre-cropped to [B, C, H, W]. A no-op when the
    /// size already matches.
    /// </summary>
    public static Tensor ResizeAndCrop(Tensor images, int width, int height)
    {
        long origHeight = images.shape[2], origWidth = images.shape[3];
        if (origHeight == height && origWidth == width) return images.alias();
        using var scope = NewDisposeScope();
        // The same double arithmetic and int() truncation as the reference, so the crop offsets agree; the Max only
        // matters where rounding would leave the resized side one pixel short of the request.
        double ratio = Math.Max((double)height / origHeight, (double)width / origWidth);
        long resizedWidth = Math.Max((long)(origWidth * ratio), width);
        long resizedHeight = Math.Max((long)(origHeight * ratio), height);
        var resized = nn.functional.interpolate(images, new[] { resizedHeight, resizedWidth },
            mode: InterpolationMode.Bilinear, align_corners: false);
        long startX = (resizedWidth - width) / 2, startY = (resizedHeight - height) / 2;
        return resized[.., .., TensorIndex.Slice(startY, startY + height), TensorIndex.Slice(startX, startX + width)]
            .contiguous().MoveToOuterDisposeScope();
    }
}
