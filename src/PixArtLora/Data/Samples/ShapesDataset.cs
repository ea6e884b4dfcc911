using System.Globalization;
using System.Text.Json.Serialization;
using Parquet.Serialization;
using PixArtLora.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Data.Samples;

/// <summary>One picture of <see cref="ShapesDataset"/>: a shape of one colour on a plain background.</summary>
/// <param name="Shape">circle, square or triangle.</param>
/// <param name="Colour">The shape's colour name.</param>
/// <param name="Background">The background's colour name.</param>
/// <param name="Large">A large shape (about 3/5 of the image) or a small one (about 2/5).</param>
/// <param name="CenterX">Centre of the shape, as a fraction of the width.</param>
/// <param name="CenterY">Centre of the shape, as a fraction of the height.</param>
public sealed record ShapeSample(string Shape, string Colour, string Background, bool Large, double CenterX, double CenterY)
{
    /// <summary>The caption: "a large red circle on a white background".</summary>
    public string Caption => $"a {(Large ? "large" : "small")} {Colour} {Shape} on a {Background} background";
}

/// <summary>
/// A small offline training set that the repository generates instead of downloading: coloured circles, squares and
/// triangles on plain backgrounds, each with a caption naming shape, colour, size and background, written as a real
/// Hugging Face-style parquet file (an <c>image</c> struct {bytes, path} of PNG bytes and a <c>text</c> caption column).
/// The content is a pure function of (count, size): the same call writes the same pixels and captions everywhere.
/// </summary>
public static class ShapesDataset
{
    /// <summary>The name <c>--dataset shapes</c> resolves to this generator.</summary>
    public const string ShortName = "shapes";
    /// <summary>Images in the default set.</summary>
    public const int DefaultCount = 48;
    /// <summary>Side of the default images in pixels (the tiny variant's resolution).</summary>
    public const int DefaultSize = 256;

    static readonly string[] Shapes = { "circle", "square", "triangle" };

    static readonly (string Name, Rgb24 Value)[] Colours =
    {
        ("red", new Rgb24(220, 40, 40)), ("green", new Rgb24(40, 170, 60)), ("blue", new Rgb24(40, 80, 220)),
        ("yellow", new Rgb24(240, 210, 40)), ("purple", new Rgb24(140, 60, 190)), ("orange", new Rgb24(245, 140, 30)),
    };

    static readonly (string Name, Rgb24 Value)[] Backgrounds =
    {
        ("white", new Rgb24(245, 245, 245)), ("black", new Rgb24(15, 15, 15)),
    };

    /// <summary>
    /// The samples of a set of <paramref name="count"/> images: every shape meets every colour before any pairing repeats,
    /// and size, background and position vary with a fixed integer hash of the index (no platform random generator).
    /// </summary>
    public static IReadOnlyList<ShapeSample> Describe(int count = DefaultCount)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), $"the shapes dataset needs at least one image, got {count}");
        var samples = new List<ShapeSample>(count);
        for (int i = 0; i < count; i++)
        {
            ulong h = Mix((ulong)i + 1);
            string shape = Shapes[i % Shapes.Length];
            var colour = Colours[(i / Shapes.Length) % Colours.Length];
            var background = Backgrounds[(i / (Shapes.Length * Colours.Length) + (int)(h & 1)) % Backgrounds.Length];
            bool large = ((h >> 1) & 1) == 0;
            // Centres keep the whole shape inside the frame: the radius is at most 0.3 of the side.
            double cx = 0.35 + 0.3 * ((h >> 8) & 0xFF) / 255.0, cy = 0.35 + 0.3 * ((h >> 16) & 0xFF) / 255.0;
            samples.Add(new ShapeSample(shape, colour.Name, background.Name, large, Math.Round(cx, 4), Math.Round(cy, 4)));
        }
        return samples;
    }

    /// <summary>Draws <paramref name="sample"/> at <paramref name="size"/>² pixels (4×4 supersampled edges).</summary>
    public static Image<Rgb24> Render(ShapeSample sample, int size = DefaultSize)
    {
        if (size < 16) throw new ArgumentOutOfRangeException(nameof(size), $"image size must be at least 16 pixels, got {size}");
        var fg = Colours.First(c => c.Name == sample.Colour).Value;
        var bg = Backgrounds.First(c => c.Name == sample.Background).Value;
        double radius = (sample.Large ? 0.3 : 0.2) * size;
        double cx = sample.CenterX * size, cy = sample.CenterY * size;
        Func<double, double, bool> inside = sample.Shape switch
        {
            "circle" => (x, y) => (x - cx) * (x - cx) + (y - cy) * (y - cy) <= radius * radius,
            "square" => (x, y) => Math.Abs(x - cx) <= radius * 0.85 && Math.Abs(y - cy) <= radius * 0.85,
            "triangle" => (x, y) => InTriangle(x, y, cx, cy, radius),
            _ => throw new ArgumentException($"unknown shape '{sample.Shape}'"),
        };
        const int sub = 4;
        var image = new Image<Rgb24>(size, size);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int hits = 0;
                for (int sy = 0; sy < sub; sy++)
                    for (int sx = 0; sx < sub; sx++)
                        if (inside(x + (sx + 0.5) / sub, y + (sy + 0.5) / sub)) hits++;
                image[x, y] = Blend(bg, fg, hits, sub * sub);
            }
        return image;
    }

    /// <summary>
    /// Writes the set as one parquet file at <paramref name="path"/> (atomically) and returns its full path.
    /// Columns: <c>image</c> (struct of PNG <c>bytes</c> and a file name <c>path</c>, the Hugging Face Image feature) and <c>text</c>.
    /// </summary>
    public static string Write(string path, int count = DefaultCount, int size = DefaultSize)
    {
        var rows = Describe(count).Select((s, i) =>
        {
            using var image = Render(s, size);
            using var png = new MemoryStream();
            image.SaveAsPng(png);
            return new Row
            {
                Image = new ImageCell { Bytes = png.ToArray(), Path = string.Create(CultureInfo.InvariantCulture, $"shape-{i:D4}.png") },
                Text = s.Caption,
            };
        }).ToList();
        string full = Path.GetFullPath(path);
        AtomicFile.Write(full, fs => ParquetSerializer.SerializeAsync(rows, fs).GetAwaiter().GetResult());
        return full;
    }

    /// <summary>
    /// The parquet file of the set under <paramref name="folder"/> (<c>shapes-&lt;count&gt;-&lt;size&gt;px.parquet</c>), written on first use.
    /// </summary>
    public static string EnsureWritten(string folder, int count = DefaultCount, int size = DefaultSize)
    {
        string path = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"shapes-{count}-{size}px.parquet"));
        return File.Exists(path) ? Path.GetFullPath(path) : Write(path, count, size);
    }

    static bool InTriangle(double x, double y, double cx, double cy, double r)
    {
        // Upward equilateral triangle inscribed in the circle of radius r.
        double ax = cx, ay = cy - r;
        double bx = cx - r * 0.866, by = cy + r * 0.5;
        double qx = cx + r * 0.866, qy = cy + r * 0.5;
        double d1 = (x - bx) * (ay - by) - (ax - bx) * (y - by);
        double d2 = (x - qx) * (by - qy) - (bx - qx) * (y - qy);
        double d3 = (x - ax) * (qy - ay) - (qx - ax) * (y - ay);
        bool neg = d1 < 0 || d2 < 0 || d3 < 0, pos = d1 > 0 || d2 > 0 || d3 > 0;
        return !(neg && pos);
    }

    static Rgb24 Blend(Rgb24 bg, Rgb24 fg, int hits, int total)
    {
        byte Mix1(byte b, byte f) => (byte)((b * (total - hits) + f * hits + total / 2) / total);
        return new Rgb24(Mix1(bg.R, fg.R), Mix1(bg.G, fg.G), Mix1(bg.B, fg.B));
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    sealed class Row
    {
        [JsonPropertyName("image")] public ImageCell? Image { get; set; }
        [JsonPropertyName("text")] public string? Text { get; set; }
    }

    sealed class ImageCell
    {
        [JsonPropertyName("bytes")] public byte[]? Bytes { get; set; }
        [JsonPropertyName("path")] public string? Path { get; set; }
    }
}
