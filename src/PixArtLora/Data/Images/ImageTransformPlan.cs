namespace PixArtLora.Data.Images;

/// <summary>Resampling filter for resizing training images.</summary>
public enum ResizeFilter
{
    /// <summary>Bicubic, the official trainer's choice up to 1024 px.</summary>
    Bicubic,
    /// <summary>Lanczos (a = 3), the official choice for the 2048 and 2880 tables.</summary>
    Lanczos,
}

/// <summary>Where the crop window sits after resizing.</summary>
public enum CropMode
{
    /// <summary>torchvision CenterCrop: offset round((size - target) / 2), halves to even.</summary>
    Center,
    /// <summary>torchvision RandomCrop: offset uniform in [0, size - target].</summary>
    Random,
}

/// <summary>
/// Every decision that fixes a training image's pixels, as integers: resize to ResizeWidth×ResizeHeight,
/// crop TargetWidth×TargetHeight at (CropLeft, CropTop), then optionally mirror. Two items with the same
/// content and the same plan give identical tensors, so <see cref="CacheKey"/> (with the content hash) keys a
/// latent cache. Plans are computed from the header size before decoding.
/// </summary>
public sealed record ImageTransformPlan(
    int SourceWidth, int SourceHeight,
    int ResizeWidth, int ResizeHeight,
    int CropLeft, int CropTop,
    int TargetWidth, int TargetHeight,
    bool FlipHorizontal, ResizeFilter Filter)
{
    /// <summary>A canonical text form of the plan; with the image's content hash it identifies the transformed pixels.</summary>
    public string CacheKey =>
        $"src={SourceWidth}x{SourceHeight};resize={ResizeWidth}x{ResizeHeight};crop={CropLeft},{CropTop},{TargetWidth}x{TargetHeight};" +
        $"flip={(FlipHorizontal ? 1 : 0)};filter={Filter.ToString().ToLowerInvariant()}";

    /// <summary>
    /// Single-resolution plan, as torchvision <c>Resize(resolution)</c> then a crop to resolution×resolution:
    /// the shorter side becomes <paramref name="resolution"/>, the longer <c>int(resolution * long / short)</c>.
    /// <paramref name="cropFractionX"/>/<paramref name="cropFractionY"/> in [0, 1) place a random crop; ignored for center crops.
    /// </summary>
    public static ImageTransformPlan ShorterSide(int sourceWidth, int sourceHeight, int resolution, CropMode crop, bool flip,
        ResizeFilter filter = ResizeFilter.Bicubic, double cropFractionX = 0, double cropFractionY = 0)
    {
        CheckSize(sourceWidth, sourceHeight);
        if (resolution <= 0) throw new ArgumentOutOfRangeException(nameof(resolution), $"resolution {resolution} must be positive");
        int rw, rh;
        if (sourceWidth <= sourceHeight) { rw = resolution; rh = (int)(resolution * (double)sourceHeight / sourceWidth); }
        else { rh = resolution; rw = (int)(resolution * (double)sourceWidth / sourceHeight); }
        return Build(sourceWidth, sourceHeight, rw, rh, resolution, resolution, crop, flip, filter, cropFractionX, cropFractionY);
    }

    /// <summary>
    /// Multi-scale plan for an aspect-ratio bin, as the official InternalDataMS: scale so the image covers the bin
    /// (if binH/h &gt; binW/w resize to (binH, int(w·binH/h)), else (int(h·binW/w), binW)), then crop to the bin.
    /// </summary>
    public static ImageTransformPlan ForBin(int sourceWidth, int sourceHeight, int binWidth, int binHeight, CropMode crop, bool flip,
        ResizeFilter filter = ResizeFilter.Bicubic, double cropFractionX = 0, double cropFractionY = 0)
    {
        CheckSize(sourceWidth, sourceHeight);
        if (binWidth <= 0 || binHeight <= 0) throw new ArgumentOutOfRangeException(nameof(binWidth), $"bin {binWidth}x{binHeight} must be positive");
        int rw, rh;
        if ((double)binHeight / sourceHeight > (double)binWidth / sourceWidth)
        {
            rh = binHeight;
            rw = (int)((double)((long)sourceWidth * binHeight) / sourceHeight);
        }
        else
        {
            rw = binWidth;
            rh = (int)((double)((long)sourceHeight * binWidth) / sourceWidth);
        }
        return Build(sourceWidth, sourceHeight, rw, rh, binWidth, binHeight, crop, flip, filter, cropFractionX, cropFractionY);
    }

    static ImageTransformPlan Build(int sw, int sh, int rw, int rh, int tw, int th, CropMode crop, bool flip, ResizeFilter filter, double fx, double fy)
    {
        // When the two scale factors are equal up to rounding, int() can land one pixel short of the target;
        // never let the resized image be smaller than the crop.
        rw = Math.Max(rw, tw);
        rh = Math.Max(rh, th);
        int left = crop == CropMode.Center ? CenterOffset(rw, tw) : RandomOffset(rw - tw, fx);
        int top = crop == CropMode.Center ? CenterOffset(rh, th) : RandomOffset(rh - th, fy);
        return new ImageTransformPlan(sw, sh, rw, rh, left, top, tw, th, flip, filter);
    }

    static int CenterOffset(int size, int target) => (int)Math.Round((size - target) / 2.0, MidpointRounding.ToEven);

    static int RandomOffset(int range, double fraction)
    {
        if (fraction < 0 || fraction >= 1) throw new ArgumentOutOfRangeException(nameof(fraction), $"crop fraction {fraction} must be in [0, 1)");
        return Math.Min(range, (int)(fraction * (range + 1)));
    }

    static void CheckSize(int w, int h)
    {
        if (w <= 0 || h <= 0) throw new ArgumentOutOfRangeException(nameof(w), $"image size {w}x{h} must be positive");
    }
}
