namespace PixArtLora.Inference;

/// <summary>
/// Where <c>lora infer</c> writes: <c>--output_path out.png</c> names the file of a single image, and for several
/// images <c>out-000.png</c>, <c>out-001.png</c> … plus the contact sheet <c>out-grid.png</c>; any other path is a
/// folder receiving <c>0000-&lt;seed&gt;.png</c> … and <c>grid.png</c>.
/// </summary>
public sealed class OutputPlan
{
    readonly string _folder;
    readonly string? _stem;
    readonly int _count;

    /// <summary>The contact sheet's path, or null for a single image.</summary>
    public string? SheetPath { get; }

    OutputPlan(string folder, string? stem, int count)
    {
        _folder = folder;
        _stem = stem;
        _count = count;
        if (count > 1) SheetPath = Path.Combine(folder, stem is null ? "grid.png" : $"{stem}-grid.png");
    }

    /// <summary>The plan for <paramref name="imageCount"/> images under <paramref name="outputPath"/>.</summary>
    public static OutputPlan For(string outputPath, int imageCount)
    {
        if (string.IsNullOrWhiteSpace(outputPath)) throw new ArgumentException("output_path is empty");
        if (imageCount < 1) throw new ArgumentOutOfRangeException(nameof(imageCount), imageCount, "at least one image");
        string full = Path.GetFullPath(outputPath);
        if (full.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            if (Directory.Exists(full)) throw new ArgumentException($"output_path {outputPath} is an existing folder; a path ending in .png names an image file");
            return new OutputPlan(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full), imageCount);
        }
        if (File.Exists(full)) throw new ArgumentException($"output_path {outputPath} is an existing file; give a folder or a path ending in .png");
        return new OutputPlan(full, null, imageCount);
    }

    /// <summary>The file of image <paramref name="index"/> (0-based, run order) made with <paramref name="seed"/>.</summary>
    public string ImagePath(int index, long seed)
    {
        if (_stem is not null)
            return Path.Combine(_folder, _count == 1 ? _stem + ".png" : $"{_stem}-{index:D3}.png");
        return Path.Combine(_folder, $"{index:D4}-{seed}.png");
    }
}
