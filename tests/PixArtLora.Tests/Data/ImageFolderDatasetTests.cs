using System.Text.Json;
using PixArtLora.Data;
using PixArtLora.Data.Sources;

namespace PixArtLora.Tests.Data;

public class ImageFolderDatasetTests
{
    static readonly DatasetLoadOptions Lenient = new() { MinImageSide = 16, MaxBadFraction = 0.9, Warn = null };

    [Fact]
    public void ReadsHuggingFaceImagefolderMetadata()
    {
        var dir = TestPaths.NewTempDir("folder");
        TestImages.Write(dir, "0001.png", TestImages.Png(TestImages.Pattern(48, 32)));
        TestImages.Write(dir, "train/0002.jpg", TestImages.Jpeg(TestImages.Pattern(32, 40)));
        TestImages.Write(dir, "0003.webp", TestImages.WebpLossless(TestImages.Pattern(20, 20)));
        var lines = new[]
        {
            JsonSerializer.Serialize(new { file_name = "0001.png", text = "first, a wide one", caption = "alt 1" }),
            JsonSerializer.Serialize(new { file_name = "train/0002.jpg", text = "second: tall", caption = "alt 2" }),
            "",
            JsonSerializer.Serialize(new { file_name = "0003.webp", caption = "alt 3" }), // no "text"
            "{not json",
            JsonSerializer.Serialize(new { file_name = "0004.png", text = "file is missing", caption = "alt 4" }),
        };
        File.WriteAllLines(Path.Combine(dir, "metadata.jsonl"), lines);

        var ds = ImageFolderDataset.Open(dir, options: Lenient);
        Assert.Equal(["first, a wide one", "second: tall"], ds.Items.Select(i => i.Caption));
        Assert.Equal([(48, 32), (32, 40)], ds.Items.Select(i => (i.Width, i.Height)));
        Assert.Equal((5, 1, 2), (ds.Report.Rows, ds.Report.SkippedFor(SkipReason.MissingCaption), ds.Report.SkippedFor(SkipReason.MissingImage)));
        Assert.Contains(ds.Report.Messages, m => m.Contains("line 5") && m.Contains("not valid JSON"));

        var alt = ImageFolderDataset.Open(dir, captionColumn: "caption", options: Lenient);
        Assert.Equal(["alt 1", "alt 2", "alt 3"], alt.Items.Select(i => i.Caption));
    }

    [Fact]
    public void EscapingFileNameIsRejected()
    {
        var root = TestPaths.NewTempDir("folder");
        var dir = Path.Combine(root, "data");
        TestImages.Write(root, "outside.png", TestImages.Png(TestImages.Pattern(32, 32)));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "metadata.jsonl"), JsonSerializer.Serialize(new { file_name = "../outside.png", text = "x" }));
        var e = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.Open(dir, options: Lenient));
        Assert.Contains("'../outside.png' escapes the image folder", e.Message);
    }

    [Fact]
    public void PairsImagesWithTextFilesAndSkipsHostileOnes()
    {
        var dir = TestPaths.NewTempDir("folder");
        TestImages.Write(dir, "b.jpg", TestImages.Jpeg(TestImages.Pattern(40, 30)));
        File.WriteAllText(Path.Combine(dir, "b.txt"), "  caption of b\n");
        TestImages.Write(dir, "a.png", TestImages.Png(TestImages.Pattern(30, 40)));
        File.WriteAllText(Path.Combine(dir, "a.txt"), "caption of a");
        TestImages.Write(dir, "nested/c.bmp", TestImages.Bmp(TestImages.Pattern(24, 24)));
        File.WriteAllText(Path.Combine(dir, "nested", "c.txt"), "caption of c");
        TestImages.Write(dir, "d.webp", TestImages.WebpLossless(TestImages.Pattern(24, 24))); // no caption file
        TestImages.Write(dir, "e.png", TestImages.Png(TestImages.Pattern(24, 24)));
        File.WriteAllText(Path.Combine(dir, "e.txt"), "   ");                                   // empty caption
        TestImages.Write(dir, "f.png", []);                                                       // zero bytes
        File.WriteAllText(Path.Combine(dir, "f.txt"), "empty file");
        TestImages.Write(dir, "g.png", HostileImages.HeaderOnly(20000, 20000));                   // bomb
        File.WriteAllText(Path.Combine(dir, "g.txt"), "bomb");
        File.WriteAllText(Path.Combine(dir, "notes.md"), "not an image, ignored");

        var warnings = new List<string>();
        var ds = ImageFolderDataset.Open(dir, options: Lenient with { Warn = warnings.Add });
        Assert.Equal(["caption of a", "caption of b", "caption of c"], ds.Items.Select(i => i.Caption));
        Assert.Equal([(30, 40), (40, 30), (24, 24)], ds.Items.Select(i => (i.Width, i.Height)));
        Assert.Equal((7, 2, 2), (ds.Report.Rows, ds.Report.SkippedFor(SkipReason.MissingCaption), ds.Report.SkippedFor(SkipReason.UnreadableImage)));
        Assert.Equal(4, warnings.Count);
        Assert.Contains(warnings, w => w.Contains(Path.Combine(dir, "g.png")) && w.Contains("decompression bomb"));
        Assert.Contains(warnings, w => w.Contains(Path.Combine(dir, "f.png")) && w.Contains("0 bytes"));
        Assert.Contains(warnings, w => w.Contains("no caption file d.txt"));
    }

    [Fact]
    public void EmptyFolderIsAnError()
    {
        var dir = TestPaths.NewTempDir("folder");
        Assert.Contains("no metadata.jsonl and no images", Assert.Throws<InvalidDataException>(() => ImageFolderDataset.Open(dir)).Message);
    }
}
