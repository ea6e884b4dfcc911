using System.Buffers.Binary;
using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Training.Logging;

/// <summary>
/// Writes a TensorBoard event file (<c>events.out.tfevents.&lt;unix seconds&gt;.&lt;host&gt;</c>) without TensorFlow:
/// TFRecord framing (uint64 length, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes)
/// around hand-encoded <c>tensorboard.Event</c> messages (event.proto / summary.proto field numbers).
/// The first record carries <c>file_version "brain.Event:2"</c>; wall_time is Unix seconds as a double.
/// Buffered writes are flushed at most <c>flushInterval</c> apart and on <see cref="Flush"/>/<see cref="Dispose"/>.
/// </summary>
public sealed class TensorBoardWriter : IMetricsSink
{
    // tensorboard.Event
    const int EventWallTime = 1, EventStep = 2, EventFileVersion = 3, EventSummary = 5, EventSessionLog = 7;
    // tensorboard.Summary / Summary.Value / Summary.Image
    const int SummaryValue = 1;
    const int ValueTag = 1, ValueSimpleValue = 2, ValueImage = 4, ValueTensor = 8, ValueMetadata = 9;
    const int ImageHeight = 1, ImageWidth = 2, ImageColorspace = 3, ImageEncoded = 4;
    // SummaryMetadata.plugin_data.plugin_name, TensorProto (dtype, tensor_shape, string_val), DT_STRING
    const int MetadataPluginData = 1, PluginName = 1;
    const int TensorDtype = 1, TensorShape = 2, TensorStringVal = 8, DtString = 7;
    // SessionLog.status START: TensorBoard drops events of earlier sessions with a step >= this one.
    const int SessionLogStatus = 1, SessionStart = 1;

    public const string FileVersion = "brain.Event:2";

    readonly FileStream _stream;
    readonly Func<DateTimeOffset> _clock;
    readonly TimeSpan _flushInterval;
    DateTimeOffset _lastFlush;

    /// <param name="logDir">Folder of the run's TensorBoard logs; created if missing.</param>
    /// <param name="flushInterval">Longest time buffered events wait for the disk (default 2 s).</param>
    /// <param name="clock">Source of wall time (tests pass a fixed clock).</param>
    public TensorBoardWriter(string logDir, TimeSpan? flushInterval = null, Func<DateTimeOffset>? clock = null)
    {
        Directory.CreateDirectory(logDir);
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
        _flushInterval = flushInterval ?? TimeSpan.FromSeconds(2);
        var now = _clock();
        string host = SafeHostName();
        string baseName = string.Create(CultureInfo.InvariantCulture, $"events.out.tfevents.{now.ToUnixTimeSeconds()}.{host}");
        FilePath = Path.Combine(Path.GetFullPath(logDir), baseName);
        // A second writer in the same second on the same host (a quick resume) gets its own file.
        for (int i = 1; File.Exists(FilePath); i++) FilePath = Path.Combine(Path.GetFullPath(logDir), $"{baseName}.{Environment.ProcessId}.{i}");
        _stream = new FileStream(FilePath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16);
        _lastFlush = now;
        WriteEvent(0, e => e.String(EventFileVersion, FileVersion));
        Flush();
    }

    /// <summary>The event file being written.</summary>
    public string FilePath { get; }

    /// <summary>Writes one scalar.</summary>
    public void AddScalar(string tag, double value, long step) => Log(step, new Dictionary<string, double> { [tag] = value });

    /// <summary>Writes several scalars as one event.</summary>
    public void Log(long step, IReadOnlyDictionary<string, double> scalars)
    {
        WriteEvent(step, e => e.Message(EventSummary, s =>
        {
            foreach (var (tag, value) in scalars)
                s.Message(SummaryValue, v => v.String(ValueTag, tag).Float(ValueSimpleValue, (float)value));
        }));
    }

    /// <summary>Writes an already encoded image (PNG or JPEG bytes) of the given size and channel count (1–4).</summary>
    public void AddImage(string tag, byte[] encoded, int width, int height, int channels, long step)
    {
        if (channels is < 1 or > 4) throw new ArgumentException($"image '{tag}': channels must be 1..4, got {channels}");
        WriteEvent(step, e => e.Message(EventSummary, s => s.Message(SummaryValue, v => v
            .String(ValueTag, tag)
            .Message(ValueImage, img => img
                .Varint(ImageHeight, height)
                .Varint(ImageWidth, width)
                .Varint(ImageColorspace, channels) // TensorBoard's colorspace codes 1..4 equal the channel count
                .Bytes(ImageEncoded, encoded)))));
    }

    /// <summary>Encodes <paramref name="image"/> as PNG and writes it.</summary>
    public void AddImage(string tag, Image<Rgb24> image, long step)
    {
        using var png = new MemoryStream();
        image.SaveAsPng(png);
        AddImage(tag, png.ToArray(), image.Width, image.Height, 3, step);
    }

    /// <summary>Writes a text summary (shown by TensorBoard's Text tab), e.g. the run's settings or prompts.</summary>
    public void AddText(string tag, string text, long step)
    {
        WriteEvent(step, e => e.Message(EventSummary, s => s.Message(SummaryValue, v => v
            .String(ValueTag, tag)
            .Message(ValueMetadata, m => m.Message(MetadataPluginData, p => p.String(PluginName, "text")))
            .Message(ValueTensor, t => t.Varint(TensorDtype, DtString).Message(TensorShape, _ => { })
                .Bytes(TensorStringVal, System.Text.Encoding.UTF8.GetBytes(text))))));
    }

    /// <summary>
    /// Marks a (re)start at <paramref name="step"/>: TensorBoard then hides events of earlier sessions with a
    /// higher step, so a run resumed from an older checkpoint shows one clean curve.
    /// </summary>
    public void MarkSessionStart(long step) =>
        WriteEvent(step, e => e.Message(EventSessionLog, l => l.Varint(SessionLogStatus, SessionStart)));

    void WriteEvent(long step, Action<ProtobufWriter> body)
    {
        var now = _clock();
        var e = new ProtobufWriter()
            .Double(EventWallTime, (now - DateTimeOffset.UnixEpoch).TotalSeconds)
            .Varint(EventStep, step);
        body(e);
        WriteRecord(e.ToArray());
        if (now - _lastFlush >= _flushInterval) Flush();
    }

    void WriteRecord(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C.ComputeMasked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C.ComputeMasked(data));
        lock (_stream)
        {
            _stream.Write(header);
            _stream.Write(data);
            _stream.Write(footer);
        }
    }

    public void Flush()
    {
        lock (_stream) _stream.Flush();
        _lastFlush = _clock();
    }

    public void Dispose()
    {
        Flush();
        _stream.Dispose();
    }

    static string SafeHostName()
    {
        string host;
        try { host = Environment.MachineName; } catch (InvalidOperationException) { host = "localhost"; }
        var chars = host.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray();
        return chars.Length == 0 ? "localhost" : new string(chars);
    }
}
