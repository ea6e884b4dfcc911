using PixArtLora.Data.Sources;

namespace PixArtLora.Tests.Data;

public class DatasetResolverTests
{
    static readonly PixArtLora.Data.DatasetLoadOptions Lenient = new() { MinImageSide = 16, MaxBadFraction = 0.9, Warn = null };

    static List<HfRow> Rows(string prefix, int n) => Enumerable.Range(0, n).Select(i => new HfRow(
        TestImages.Png(TestImages.Pattern(24, 24, seed: i)), $"{i}.png", false,
        new Dictionary<string, string?> { ["en_text"] = $"{prefix} en {i}", ["zh_text"] = $"{prefix} 中文 {i}" })).ToList();

    [Fact]
    public void ShortNameGoesThroughTheHubClientWithItsCaptionColumn()
    {
        var dir = TestPaths.NewTempDir("resolve");
        string file = Path.Combine(dir, "data", "train-00000-of-00001.parquet");
        HfParquet.Write(file, Rows("poke", 3), ["zh_text", "en_text"], rowGroupSize: 2);
        var asked = new List<string>();
        var ds = DatasetResolver.Open(new DatasetSpec { Dataset = "pokemon" }, Lenient, id => { asked.Add(id); return [file]; });
        Assert.Equal(["svjack/pokemon-blip-captions-en-zh"], asked);
        Assert.Equal(["poke en 0", "poke en 1", "poke en 2"], ds.Items.Select(i => i.Caption));

        var zh = DatasetResolver.Open(new DatasetSpec { Dataset = "pokemon", CaptionColumn = "zh_text" }, Lenient, _ => [file]);
        Assert.Equal("poke 中文 1", zh.Items[1].Caption);

        var byId = DatasetResolver.Open(new DatasetSpec { Dataset = "someone/my-set", CaptionColumn = "en_text" }, Lenient, id => { asked.Add(id); return [file]; });
        Assert.Equal("someone/my-set", asked[^1]);
        Assert.Equal(3, byId.Count);
    }

    [Fact]
    public void LocalFolderUsesTheTrainSplitAndSingleFilesWork()
    {
        var dir = TestPaths.NewTempDir("resolve");
        HfParquet.Write(Path.Combine(dir, "data", "train-00000-of-00002.parquet"), Rows("train a", 2), ["en_text"], 5);
        HfParquet.Write(Path.Combine(dir, "data", "train-00001-of-00002.parquet"), Rows("train b", 2), ["en_text"], 5);
        HfParquet.Write(Path.Combine(dir, "data", "test-00000-of-00001.parquet"), Rows("test", 2), ["en_text"], 5);
        var ds = DatasetResolver.Open(new DatasetSpec { Dataset = dir }, Lenient);
        Assert.Equal(["train a en 0", "train a en 1", "train b en 0", "train b en 1"], ds.Items.Select(i => i.Caption));

        var single = DatasetResolver.Open(new DatasetSpec { Dataset = Path.Combine(dir, "data", "test-00000-of-00001.parquet") }, Lenient);
        Assert.Equal(["test en 0", "test en 1"], single.Items.Select(i => i.Caption));
    }

    [Fact]
    public void ImageFolderAndJsonLabels()
    {
        var dir = TestPaths.NewTempDir("resolve");
        TestImages.Write(dir, "x.png", TestImages.Png(TestImages.Pattern(24, 24)));
        File.WriteAllText(Path.Combine(dir, "x.txt"), "an x");
        Assert.Equal("an x", DatasetResolver.Open(new DatasetSpec { Dataset = dir }, Lenient).Items[0].Caption);

        string json = JsonLabelDatasetTests.WriteLabels(dir, new object[] { new { path = "x.png", prompt = "from labels" } });
        Assert.Equal("from labels", DatasetResolver.Open(new DatasetSpec { JsonPath = json }, Lenient).Items[0].Caption);
        Assert.Throws<ArgumentException>(() => DatasetResolver.Open(new DatasetSpec { JsonPath = json, Dataset = dir }, Lenient));
    }

    [Fact]
    public void UnresolvableNamesAreClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => DatasetResolver.Open(new DatasetSpec { Dataset = "pokemn" }, Lenient));
        Assert.Contains("pokemon", e.Message);
        var e2 = Assert.Throws<InvalidOperationException>(() => DatasetResolver.Open(new DatasetSpec { Dataset = "pokemon" }, Lenient));
        Assert.Contains("svjack/pokemon-blip-captions-en-zh", e2.Message);
        Assert.Throws<ArgumentException>(() => DatasetResolver.Open(new DatasetSpec(), Lenient));
    }
}
