using System.Security.Cryptography;
using Parquet;
using PixArtLora.Data;
using PixArtLora.Data.Images;
using PixArtLora.Data.Sources;

namespace PixArtLora.Tests.Data;

public class ParquetDatasetTests
{
    internal static readonly DatasetLoadOptions Lenient = new() { MinImageSide = 16, MaxBadFraction = 0.9, Warn = null };

    static Dictionary<string, string?> Captions(string? en, string? zh) => new() { ["en_text"] = en, ["zh_text"] = zh };

    /// <summary>13 rows in 3 row groups: PNG and JPEG images of distinct sizes, and one row for each kind of bad cell.</summary>
    internal static (List<HfRow> Rows, List<int> Good) PokemonLike()
    {
        var rows = new List<HfRow>();
        var good = new List<int>();
        for (int i = 0; i < 13; i++)
        {
            using var img = TestImages.Pattern(32 + 4 * i, 24 + 2 * i, seed: i);
            byte[] bytes = i % 2 == 0 ? TestImages.Png(img) : TestImages.Jpeg(img);
            var row = i switch
            {
                2 => new HfRow(bytes, $"{i}.png", false, Captions(null, "空")),                 // null caption
                4 => new HfRow(null, null, true, Captions("struct is null", "无")),              // whole image struct null
                6 => new HfRow(null, "only/a/path.png", false, Captions("bytes are null", "无")), // bytes null, path set
                9 => new HfRow("not an image"u8.ToArray(), "x.png", false, Captions("garbage bytes", "坏")),
                11 => new HfRow(bytes, $"{i}.png", false, Captions("", "空")),                  // empty caption
                12 => new HfRow(TestImages.Png(TestImages.Pattern(10, 10)), "tiny.png", false, Captions("too small", "小")),
                _ => new HfRow(bytes, $"{i}.png", false, Captions($"a pokemon number {i}, with wings", $"宝可梦 {i} 号")),
            };
            if (row.Captions["en_text"] == $"a pokemon number {i}, with wings") good.Add(i);
            rows.Add(row);
        }
        return (rows, good);
    }

    [Fact]
    public async Task ReadsArrowWrittenStructsWithNullsAcrossRowGroups()
    {
        var (rows, good) = PokemonLike();
        string file = Path.Combine(TestPaths.NewTempDir("parquet"), "train-00000-of-00001.parquet");
        HfParquet.Write(file, rows, ["en_text", "zh_text"], rowGroupSize: 5);
        await using (var check = await ParquetReader.CreateAsync(file)) Assert.Equal(3, check.RowGroupCount);

        var ds = ParquetImageDataset.Open([file], options: Lenient);
        Assert.Equal(good.Select(i => $"a pokemon number {i}, with wings"), ds.Items.Select(i => i.Caption));
        Assert.Equal(good.Select(i => (32 + 4 * i, 24 + 2 * i)), ds.Items.Select(i => (i.Width, i.Height)));
        Assert.Equal(Enumerable.Range(0, good.Count), ds.Items.Select(i => i.Index));

        // Bytes come back exactly, in any order (row groups re-read on demand), and hash to their SHA-256.
        foreach (var item in ds.Items.Reverse())
        {
            int row = good[item.Index];
            byte[] original = rows[row].Image!;
            Assert.Equal(original, item.Image.ReadBytes());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(original)), item.Image.ContentHash());
            Assert.Equal($"{file} row {row}", item.Image.Name);
        }
        using (var decoded = ds.Items[0].Image.Decode())
        using (var expected = TestImages.Pattern(32, 24, seed: 0))
            Assert.Equal(expected[7, 5], decoded[7, 5]); // row 0 is a lossless PNG

        var r = ds.Report;
        Assert.Equal((13, 7), (r.Rows, r.Kept));
        Assert.Equal(2, r.SkippedFor(SkipReason.MissingCaption));
        Assert.Equal(2, r.SkippedFor(SkipReason.MissingImage));
        Assert.Equal(1, r.SkippedFor(SkipReason.UnreadableImage));
        Assert.Equal(1, r.SkippedFor(SkipReason.ImageTooSmall));
        Assert.Contains("kept 7 of 13 rows (skipped: 2 missing caption, 2 missing image, 1 unreadable image, 1 image too small)", r.Summary);
        Assert.Contains(r.Messages, m => m.Contains($"{file} row 9") && m.Contains("not a PNG, JPEG, WebP, BMP or GIF"));
        Assert.Contains(r.Messages, m => m.Contains($"{file} row 4") && m.Contains("null"));
    }

    [Fact]
    public void CaptionColumnOverrideReadsChineseExactly()
    {
        var (rows, good) = PokemonLike();
        string file = Path.Combine(TestPaths.NewTempDir("parquet"), "data.parquet");
        HfParquet.Write(file, rows, ["en_text", "zh_text"], rowGroupSize: 4);
        var ds = ParquetImageDataset.Open([file], captionColumn: "zh_text", options: Lenient);
        // Rows 2 and 11 have a Chinese caption, so only the image problems and the tiny image are skipped.
        var expected = Enumerable.Range(0, 13).Where(i => i is not (4 or 6 or 9 or 12)).Select(i => rows[i].Captions["zh_text"]);
        Assert.Equal(expected, ds.Items.Select(i => i.Caption));
    }

    [Fact]
    public void PlainBinaryImageColumnAndTextCaption()
    {
        var rows = Enumerable.Range(0, 6).Select(i =>
            new HfRow(TestImages.Png(TestImages.Pattern(20 + i, 20)), null, false, new Dictionary<string, string?> { ["text"] = $"caption {i}" })).ToList();
        string file = Path.Combine(TestPaths.NewTempDir("parquet"), "flat.parquet");
        HfParquet.Write(file, rows, ["text"], rowGroupSize: 2, imageAsStruct: false);
        var ds = ParquetImageDataset.Open([file], options: Lenient);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => $"caption {i}"), ds.Items.Select(i => i.Caption));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => 20 + i), ds.Items.Select(i => i.Width));
        Assert.Equal(rows[5].Image, ds.Items[5].Image.ReadBytes());
    }

    [Fact]
    public void SeveralFilesFormOneDatasetInOrder()
    {
        var dir = TestPaths.NewTempDir("parquet");
        var files = new List<string>();
        for (int f = 0; f < 2; f++)
        {
            var rows = Enumerable.Range(0, 3).Select(i =>
                new HfRow(TestImages.Jpeg(TestImages.Pattern(24, 24, seed: f * 10 + i)), null, false, new Dictionary<string, string?> { ["text"] = $"file {f} row {i}" })).ToList();
            files.Add(Path.Combine(dir, $"part{f}.parquet"));
            HfParquet.Write(files[^1], rows, ["text"], rowGroupSize: 2);
        }
        var ds = ParquetImageDataset.Open(files, options: Lenient);
        Assert.Equal(["file 0 row 0", "file 0 row 1", "file 0 row 2", "file 1 row 0", "file 1 row 1", "file 1 row 2"], ds.Items.Select(i => i.Caption));
        Assert.Equal($"{files[1]} row 2", ds.Items[5].Image.Name);
    }

    [Fact]
    public void MissingColumnsNameWhatExists()
    {
        var (rows, _) = PokemonLike();
        string file = Path.Combine(TestPaths.NewTempDir("parquet"), "data.parquet");
        HfParquet.Write(file, rows, ["en_text", "zh_text"], rowGroupSize: 5);
        var e = Assert.Throws<InvalidDataException>(() => ParquetImageDataset.Open([file], captionColumn: "caption_en", options: Lenient));
        Assert.Contains("no caption column 'caption_en'", e.Message);
        Assert.Contains("image.bytes, image.path, en_text, zh_text", e.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => ParquetImageDataset.Open([file], imageColumn: "picture", options: Lenient));
        Assert.Contains("no image column 'picture'", e2.Message);
        Assert.Contains(file, e2.Message);
    }

    [Fact]
    public void TooManyBadRowsStopsWithACount()
    {
        var rows = Enumerable.Range(0, 10).Select(i =>
            new HfRow(TestImages.Png(TestImages.Pattern(20, 20)), null, false, new Dictionary<string, string?> { ["text"] = i < 3 ? null : $"c{i}" })).ToList();
        string file = Path.Combine(TestPaths.NewTempDir("parquet"), "bad.parquet");
        HfParquet.Write(file, rows, ["text"], rowGroupSize: 10);
        var e = Assert.Throws<InvalidDataException>(() => ParquetImageDataset.Open([file], options: Lenient with { MaxBadFraction = 0.25 }));
        Assert.Contains("3 of 10 rows are unusable", e.Message);
        Assert.Contains("row 0", e.Message);
        Assert.Equal(7, ParquetImageDataset.Open([file], options: Lenient with { MaxBadFraction = 0.3 }).Count);
    }

    [Fact]
    public void NotParquetIsAClearError()
    {
        string file = TestImages.Write(TestPaths.NewTempDir("parquet"), "fake.parquet", "PAR1 but not really"u8.ToArray());
        var e = Assert.Throws<InvalidDataException>(() => ParquetImageDataset.Open([file], options: Lenient));
        Assert.Contains(file, e.Message);
    }
}
