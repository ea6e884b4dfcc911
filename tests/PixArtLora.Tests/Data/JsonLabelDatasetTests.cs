using System.Text.Json;
using PixArtLora.Data;
using PixArtLora.Data.Sources;

namespace PixArtLora.Tests.Data;

public class JsonLabelDatasetTests
{
    static readonly DatasetLoadOptions Lenient = new() { MinImageSide = 16, MaxBadFraction = 0.9, Warn = null };

    internal static string WriteLabels(string dir, object entries)
    {
        string path = Path.Combine(dir, "data_info.json");
        Directory.CreateDirectory(dir);
        File.WriteAllText(path, JsonSerializer.Serialize(entries));
        return path;
    }

    [Fact]
    public void ReadsTheOfficialLabelFormat()
    {
        var root = TestPaths.NewTempDir("json");
        var images = Path.Combine(root, "InternImgs");
        TestImages.Write(images, "a.png", TestImages.Png(TestImages.Pattern(64, 48)));
        TestImages.Write(images, "sub/b.jpg", TestImages.Jpeg(TestImages.Pattern(40, 80)));
        TestImages.Write(images, "c.png", TestImages.Png(TestImages.Pattern(30, 30)));
        TestImages.Write(images, "wide.png", TestImages.Png(TestImages.Pattern(30, 30)));
        string json = WriteLabels(Path.Combine(root, "InternData"), new object[]
        {
            new { path = "a.png", prompt = "a red square", sharegpt4v = "A detailed description of a red square.", height = 48, width = 64, ratio = 0.75 },
            new { path = "sub/b.jpg", prompt = "a tall thing" }, // no sizes: read from the header
            new { path = "missing.png", prompt = "gone", height = 10, width = 10, ratio = 1.0 },
            new { path = "c.png", sharegpt4v = "no prompt here", height = 30, width = 30, ratio = 1.0 },
            new { path = "wide.png", prompt = "too tall", height = 500, width = 100, ratio = 5.0 }, // official filter: ratio > 4.5
            new { path = "c.png", prompt = "labels say 1000x300", height = 300, width = 1000, ratio = 0.3 },
        });

        var ds = JsonLabelDataset.Open(json, images, Lenient);
        Assert.Equal(["a red square", "a tall thing", "labels say 1000x300"], ds.Items.Select(i => i.Caption));
        Assert.Equal(["A detailed description of a red square.", null, null], ds.Items.Select(i => i.AlternateCaption));
        Assert.Equal([(64, 48), (40, 80), (1000, 300)], ds.Items.Select(i => (i.Width, i.Height))); // label sizes win
        Assert.Equal(Path.Combine(images, "sub", "b.jpg"), ds.Items[1].Image.Name);
        Assert.Equal((6, 1, 1, 1), (ds.Report.Rows, ds.Report.SkippedFor(SkipReason.MissingImage),
            ds.Report.SkippedFor(SkipReason.MissingCaption), ds.Report.SkippedFor(SkipReason.ExtremeAspectRatio)));
        Assert.Equal(2, ds.Report.Bad); // the aspect-ratio filter is not "bad"
    }

    [Theory]
    [InlineData("../secret.png", "escapes")]
    [InlineData("imgs/../../secret.png", "escapes")]
    [InlineData("..\\secret.png", "escapes")]
    [InlineData("/etc/passwd", "absolute")]
    public void PathsMayNotEscapeTheImageFolder(string path, string word)
    {
        var root = TestPaths.NewTempDir("json");
        var images = Path.Combine(root, "images");
        TestImages.Write(images, "ok.png", TestImages.Png(TestImages.Pattern(32, 32)));
        TestImages.Write(root, "secret.png", TestImages.Png(TestImages.Pattern(32, 32)));
        string json = WriteLabels(root, new object[] { new { path = "ok.png", prompt = "fine" }, new { path, prompt = "sneaky" } });
        var e = Assert.Throws<InvalidDataException>(() => JsonLabelDataset.Open(json, images, Lenient));
        Assert.Contains(word, e.Message);
        Assert.Contains("entry 1", e.Message);
        Assert.Contains(json, e.Message);
    }

    [Fact]
    public void SymlinkOutOfTheImageFolderIsRejected()
    {
        var root = TestPaths.NewTempDir("json");
        var images = Path.Combine(root, "images");
        Directory.CreateDirectory(images);
        string outside = TestImages.Write(root, "secret.png", TestImages.Png(TestImages.Pattern(32, 32)));
        File.CreateSymbolicLink(Path.Combine(images, "link.png"), outside);
        string json = WriteLabels(root, new object[] { new { path = "link.png", prompt = "via a link" } });
        var e = Assert.Throws<InvalidDataException>(() => JsonLabelDataset.Open(json, images, Lenient));
        Assert.Contains("outside the image folder", e.Message);

        // A linked folder on the way out is caught too; a link that stays inside is fine.
        Directory.CreateDirectory(Path.Combine(root, "elsewhere"));
        TestImages.Write(root, "elsewhere/x.png", TestImages.Png(TestImages.Pattern(32, 32)));
        Directory.CreateSymbolicLink(Path.Combine(images, "linked"), Path.Combine(root, "elsewhere"));
        string viaFolder = WriteLabels(root, new object[] { new { path = "linked/x.png", prompt = "via a folder link" } });
        Assert.Contains("outside the image folder", Assert.Throws<InvalidDataException>(() => JsonLabelDataset.Open(viaFolder, images, Lenient)).Message);
        TestImages.Write(images, "real/y.png", TestImages.Png(TestImages.Pattern(32, 32)));
        Directory.CreateSymbolicLink(Path.Combine(images, "alias"), Path.Combine(images, "real"));
        string inside = WriteLabels(root, new object[] { new { path = "alias/y.png", prompt = "link inside" } });
        Assert.Equal("link inside", JsonLabelDataset.Open(inside, images, Lenient).Items[0].Caption);
    }

    [Fact]
    public void MalformedLabelFilesAreClearErrors()
    {
        var root = TestPaths.NewTempDir("json");
        string notList = Path.Combine(root, "obj.json");
        File.WriteAllText(notList, "{\"path\": \"a.png\"}");
        Assert.Contains("expected a JSON list", Assert.Throws<InvalidDataException>(() => JsonLabelDataset.Open(notList, root, Lenient)).Message);
        string badType = WriteLabels(root, new object[] { new { path = "a.png", prompt = 5 } });
        var e = Assert.Throws<InvalidDataException>(() => JsonLabelDataset.Open(badType, root, Lenient));
        Assert.Contains("entry 0: \"prompt\" should be a string", e.Message);
    }
}
