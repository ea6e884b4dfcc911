using System.Text;
using System.Text.Json;
using PixArtLora.Training.Logging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit.Sdk;

namespace PixArtLora.Tests.Training;

public class MetricsLoggingTests
{
    static readonly DateTimeOffset Clock = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_250);

    [Fact]
    public void Crc32CMatchesTheStandardCheckValue()
    {
        // The CRC-32C catalogue check value for "123456789" is 0xE3069283.
        Assert.Equal(0xE3069283u, MaskedCrc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        var data = Encoding.ASCII.GetBytes("a longer input that crosses the 8-byte fast path boundary.");
        Assert.Equal(TensorBoardEventReader.MaskedCrc(data), MaskedCrc32C.ComputeMasked(data));
    }

    [Fact]
    public void EventFileParsesBackWithScalarsImagesAndText()
    {
        var dir = TestPaths.NewTempDir("tb");
        string file;
        byte[] png;
        using (var image = new Image<Rgb24>(5, 3, new Rgb24(200, 10, 30)))
        using (var tb = new TensorBoardWriter(dir, clock: () => Clock))
        {
            file = tb.FilePath;
            tb.Log(10, new Dictionary<string, double> { ["train/loss"] = 0.25, ["train/lr"] = 1e-4 });
            tb.AddScalar("train/grad_norm", 3.5, 11);
            tb.AddImage("validation/0", image, 12);
            tb.AddText("config", "rank: 16", 0);
            tb.MarkSessionStart(10);
            using var ms = new MemoryStream();
            image.SaveAsPng(ms);
            png = ms.ToArray();
        }
        Assert.StartsWith("events.out.tfevents.1700000000.", Path.GetFileName(file));

        var events = TensorBoardEventReader.Read(file);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        Assert.All(events, e => Assert.Equal(1_700_000_000.25, e.WallTime, 1e-6));
        var scalars = events.SelectMany(e => e.Values.Where(v => v.Simple != null).Select(v => (e.Step, v.Tag, v.Simple!.Value))).ToList();
        Assert.Equal(new (long, string, float)[] { (10, "train/loss", 0.25f), (10, "train/lr", 1e-4f), (11, "train/grad_norm", 3.5f) }, scalars);

        var img = events.SelectMany(e => e.Values).Single(v => v.Image != null);
        Assert.Equal("validation/0", img.Tag);
        Assert.Equal((3, 5, 3), (img.Image!.Height, img.Image.Width, img.Image.Colorspace));
        using (var decoded = Image.Load<Rgb24>(img.Image.Encoded))
            Assert.Equal(new Rgb24(200, 10, 30), decoded[4, 2]);
        Assert.Equal(png, img.Image.Encoded);
        Assert.Equal("rank: 16", events.SelectMany(e => e.Values).Single(v => v.Text != null).Text);
        Assert.Equal(1, events.Single(e => e.SessionStatus != null).SessionStatus);
    }

    [Fact]
    public void ReaderDetectsACorruptedRecord()
    {
        var dir = TestPaths.NewTempDir("tb");
        string file;
        using (var tb = new TensorBoardWriter(dir, clock: () => Clock))
        {
            file = tb.FilePath;
            tb.AddScalar("loss", 1.0, 1);
        }
        var bytes = File.ReadAllBytes(file);
        bytes[^6] ^= 0x01; // inside the last record's payload
        File.WriteAllBytes(file, bytes);
        var e = Assert.Throws<XunitException>(() => TensorBoardEventReader.Read(file));
        Assert.Contains("data CRC mismatch", e.Message);
    }

    [Fact]
    public void EventsAreOnDiskBeforeTheWriterCloses()
    {
        var dir = TestPaths.NewTempDir("tb");
        using var tb = new TensorBoardWriter(dir, flushInterval: TimeSpan.Zero);
        tb.AddScalar("loss", 0.5, 1);
        using var copy = new FileStream(tb.FilePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[copy.Length];
        copy.ReadExactly(bytes);
        string snapshot = Path.Combine(dir, "snapshot.tfevents");
        File.WriteAllBytes(snapshot, bytes);
        Assert.Equal(0.5f, TensorBoardEventReader.Read(snapshot).SelectMany(e => e.Values).Single().Simple);
    }

    [Fact]
    public void MetricsJsonlAppendsOneObjectPerLine()
    {
        var dir = TestPaths.NewTempDir("jsonl");
        string path = Path.Combine(dir, MetricsJsonlWriter.DefaultFileName);
        using (var m = new MetricsJsonlWriter(path, () => Clock))
        {
            m.Log(1, new Dictionary<string, double> { ["loss"] = 0.5, ["lr"] = 2e-5 });
            m.Log(2, new Dictionary<string, double> { ["loss"] = double.NaN });
        }
        using (var resumed = new MetricsJsonlWriter(path, () => Clock))
            resumed.Log(3, new Dictionary<string, double> { ["loss"] = 0.25 });

        var lines = File.ReadAllLines(path);
        Assert.Equal(3, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal(1, first.RootElement.GetProperty("step").GetInt64());
        Assert.Equal(1_700_000_000.25, first.RootElement.GetProperty("wall_time").GetDouble(), 1e-6);
        Assert.Equal(2e-5, first.RootElement.GetProperty("lr").GetDouble());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal("NaN", second.RootElement.GetProperty("loss").GetString());
        using var third = JsonDocument.Parse(lines[2]);
        Assert.Equal(0.25, third.RootElement.GetProperty("loss").GetDouble());
    }

    [Fact]
    public void MetricsLogFansOutToEverySink()
    {
        var dir = TestPaths.NewTempDir("fanout");
        string jsonl = Path.Combine(dir, "metrics.jsonl");
        string events;
        using (var log = new MetricsLog(new TensorBoardWriter(dir), new MetricsJsonlWriter(jsonl)))
        {
            log.Log(5, new Dictionary<string, double> { ["loss"] = 0.75 });
            events = ((TensorBoardWriter)log.Sinks[0]).FilePath;
        }
        Assert.Single(File.ReadAllLines(jsonl));
        Assert.Equal(0.75f, TensorBoardEventReader.Read(events).SelectMany(e => e.Values).Single().Simple);
    }

    [Fact]
    public void OpenFollowsReportTo()
    {
        var dir = TestPaths.NewTempDir("reportto");
        using (var log = MetricsLog.Open(dir))
        {
            Assert.NotNull(log.TensorBoard);
            Assert.StartsWith(Path.Combine(dir, "logs", "events.out.tfevents."), log.TensorBoard!.FilePath);
        }
        Assert.True(File.Exists(Path.Combine(dir, "metrics.jsonl")));
        using (var none = MetricsLog.Open(dir, "none")) Assert.Null(none.TensorBoard);
        var e = Assert.Throws<ArgumentException>(() => MetricsLog.Open(dir, "wandb"));
        Assert.Contains("tensorboard, none", e.Message);
    }
}
