using PixArtLora.Data.Samples;
using PixArtLora.Data.Sources;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Training;

/// <summary>The generated shapes dataset: captions say what the pixels show, and the parquet file is a real HF-style dataset.</summary>
public class TrainerSampleDataTests
{
    [Fact]
    public void Each_picture_shows_the_shape_colour_and_background_its_caption_names()
    {
        var colours = new Dictionary<string, Rgb24>
        {
            ["red"] = new(220, 40, 40), ["green"] = new(40, 170, 60), ["blue"] = new(40, 80, 220),
            ["yellow"] = new(240, 210, 40), ["purple"] = new(140, 60, 190), ["orange"] = new(245, 140, 30),
            ["white"] = new(245, 245, 245), ["black"] = new(15, 15, 15),
        };
        var samples = ShapesDataset.Describe();
        Assert.Equal(ShapesDataset.DefaultCount, samples.Count);
        Assert.Equal(new[] { "circle", "square", "triangle" }, samples.Select(s => s.Shape).Distinct().Order());
        Assert.Equal(2, samples.Select(s => s.Background).Distinct().Count());
        foreach (var s in samples.Take(12))
        {
            using var image = ShapesDataset.Render(s, 64);
            Assert.Equal(colours[s.Colour], image[(int)(s.CenterX * 64), (int)(s.CenterY * 64)]);
            Assert.Equal(colours[s.Background], image[1, 1]);
            Assert.Equal(colours[s.Background], image[62, 62]);
            Assert.Matches($"^a (small|large) {s.Colour} {s.Shape} on a {s.Background} background$", s.Caption);
            // "large" covers about twice the area of "small" (radius 0.3 against 0.2 of the side).
            using var resized = ShapesDataset.Render(s with { Large = !s.Large }, 64);
            double ratio = (double)Covered(image, colours[s.Colour]) / Covered(resized, colours[s.Colour]);
            Assert.InRange(s.Large ? ratio : 1 / ratio, 1.8, 2.8);
        }
    }

    static int Covered(SixLabors.ImageSharp.Image<Rgb24> image, Rgb24 colour)
    {
        int n = 0;
        for (int y = 0; y < image.Height; y++) for (int x = 0; x < image.Width; x++) if (image[x, y].Equals(colour)) n++;
        return n;
    }

    [Fact]
    public void The_same_call_writes_the_same_bytes()
    {
        string dir = TestPaths.NewTempDir("shapes-bytes");
        string a = ShapesDataset.Write(Path.Combine(dir, "a.parquet"), 5, 64);
        string b = ShapesDataset.Write(Path.Combine(dir, "b.parquet"), 5, 64);
        var dataset = DatasetResolver.Open(new DatasetSpec { Dataset = a });
        var other = DatasetResolver.Open(new DatasetSpec { Dataset = b });
        Assert.Equal(dataset.Items.Select(i => i.Image.ContentHash()), other.Items.Select(i => i.Image.ContentHash()));
        Assert.Equal(ShapesDataset.EnsureWritten(dir, 5, 64), ShapesDataset.EnsureWritten(dir, 5, 64));
    }
}
