namespace PixArtLora.Registry;

/// <summary>One aspect-ratio bin: ratio = height / width, and the pixel size generated or trained at.</summary>
public readonly record struct AspectRatioBin(string Ratio, int Height, int Width)
{
    public double RatioValue => double.Parse(Ratio, System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// An ordered table of aspect-ratio bins for one base resolution. <see cref="Nearest"/> follows both
/// references: ar = height / width, the bin whose ratio is closest wins, ties go to the earlier entry.
/// </summary>
public sealed class AspectRatioTable
{
    public string Name { get; }
    public int BaseResolution { get; }
    public IReadOnlyList<AspectRatioBin> Bins { get; }

    public AspectRatioTable(string name, int baseResolution, IEnumerable<(string Ratio, int Height, int Width)> rows)
    {
        Name = name;
        BaseResolution = baseResolution;
        Bins = rows.Select(r => new AspectRatioBin(r.Ratio, r.Height, r.Width)).ToList();
    }

    /// <summary>The bin closest in aspect ratio to an image of <paramref name="height"/> × <paramref name="width"/>.</summary>
    public AspectRatioBin Nearest(int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"image size {width}x{height} must be positive");
        double ar = (double)height / width;
        var best = Bins[0];
        double bestDist = Math.Abs(best.RatioValue - ar);
        foreach (var bin in Bins.Skip(1))
        {
            double dist = Math.Abs(bin.RatioValue - ar);
            if (dist < bestDist) { best = bin; bestDist = dist; }
        }
        return best;
    }

    public bool Contains(int height, int width) => Bins.Any(b => b.Height == height && b.Width == width);
}

public static partial class AspectRatioBins
{
    // Training buckets: the official repository's 40-bin tables (ASPECT_RATIO_N), what PixArt was trained on.
    public static AspectRatioTable Official256 { get; } = new("ASPECT_RATIO_256", 256, Official256Rows);
    public static AspectRatioTable Official512 { get; } = new("ASPECT_RATIO_512", 512, Official512Rows);
    public static AspectRatioTable Official1024 { get; } = new("ASPECT_RATIO_1024", 1024, Official1024Rows);
    public static AspectRatioTable Official2048 { get; } = new("ASPECT_RATIO_2048", 2048, Official2048Rows);
    public static AspectRatioTable Official2880 { get; } = new("ASPECT_RATIO_2880", 2880, Official2880Rows);

    // Inference binning: diffusers' pipeline tables (33 bins; 40 for 2048), so that resolution binning
    // snaps a request exactly where diffusers' PixArt pipelines would.
    public static AspectRatioTable Diffusers256 { get; } = new("ASPECT_RATIO_256_BIN", 256, Diffusers256Rows);
    public static AspectRatioTable Diffusers512 { get; } = new("ASPECT_RATIO_512_BIN", 512, Diffusers512Rows);
    public static AspectRatioTable Diffusers1024 { get; } = new("ASPECT_RATIO_1024_BIN", 1024, Diffusers1024Rows);
    public static AspectRatioTable Diffusers2048 { get; } = new("ASPECT_RATIO_2048_BIN", 2048, Diffusers2048Rows);

    /// <summary>The official training table for a base resolution (256, 512, 1024, 2048, 2880).</summary>
    public static AspectRatioTable ForTraining(int baseResolution) => baseResolution switch
    {
        256 => Official256, 512 => Official512, 1024 => Official1024, 2048 => Official2048, 2880 => Official2880,
        _ => throw new ArgumentException($"no aspect-ratio table for base resolution {baseResolution} (expected 256, 512, 1024, 2048 or 2880)"),
    };

    /// <summary>diffusers' binning table for a base resolution (256, 512, 1024, 2048).</summary>
    public static AspectRatioTable ForInference(int baseResolution) => baseResolution switch
    {
        256 => Diffusers256, 512 => Diffusers512, 1024 => Diffusers1024, 2048 => Diffusers2048,
        _ => throw new ArgumentException($"no binning table for base resolution {baseResolution} (expected 256, 512, 1024 or 2048)"),
    };
}
