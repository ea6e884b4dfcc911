using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using SixLabors.ImageSharp.Processing.Processors.Transforms;

namespace PixArtLora.Data.Images;

/// <summary>Applies an <see cref="ImageTransformPlan"/>: resize, crop, optional horizontal flip.</summary>
public static class ImageTransforms
{
    /// <summary>
    /// Returns a new image transformed by <paramref name="plan"/>; <paramref name="source"/> is left unchanged.
    /// The plan must have been made for this image's size.
    /// </summary>
    public static Image<Rgb24> Apply(Image<Rgb24> source, ImageTransformPlan plan)
    {
        if (source.Width != plan.SourceWidth || source.Height != plan.SourceHeight)
            throw new ArgumentException($"transform plan is for a {plan.SourceWidth}x{plan.SourceHeight} image, got {source.Width}x{source.Height}");
        return source.Clone(ctx =>
        {
            if (plan.ResizeWidth != source.Width || plan.ResizeHeight != source.Height)
                ctx.Resize(new ResizeOptions
                {
                    Size = new Size(plan.ResizeWidth, plan.ResizeHeight),
                    Mode = ResizeMode.Stretch,
                    Sampler = Resampler(plan.Filter),
                });
            if (plan.CropLeft != 0 || plan.CropTop != 0 || plan.TargetWidth != plan.ResizeWidth || plan.TargetHeight != plan.ResizeHeight)
                ctx.Crop(new Rectangle(plan.CropLeft, plan.CropTop, plan.TargetWidth, plan.TargetHeight));
            if (plan.FlipHorizontal) ctx.Flip(FlipMode.Horizontal);
        });
    }

    /// <summary>Resizes to exactly <paramref name="width"/>×<paramref name="height"/> (no crop), e.g. to undo resolution binning.</summary>
    public static Image<Rgb24> Resize(Image<Rgb24> source, int width, int height, ResizeFilter filter = ResizeFilter.Bicubic) =>
        source.Clone(ctx => ctx.Resize(new ResizeOptions { Size = new Size(width, height), Mode = ResizeMode.Stretch, Sampler = Resampler(filter) }));

    static IResampler Resampler(ResizeFilter filter) => filter switch
    {
        ResizeFilter.Bicubic => KnownResamplers.Bicubic,
        ResizeFilter.Lanczos => KnownResamplers.Lanczos3,
        _ => throw new ArgumentOutOfRangeException(nameof(filter), filter, "unknown resize filter"),
    };
}
