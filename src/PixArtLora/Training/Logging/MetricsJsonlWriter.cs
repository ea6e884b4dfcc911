using System.Text;
using System.Text.Json;

namespace PixArtLora.Training.Logging;

/// <summary>
/// Appends one JSON object per record to <c>metrics.jsonl</c>: <c>{"step":N,"wall_time":unix seconds,"tag":value,...}</c>.
/// Each line is flushed as written, so the file is usable while training runs and a killed run loses at most
/// a partial last line. (An append-only log cannot be written atomically as a whole; readers skip a torn line.)
/// </summary>
public sealed class MetricsJsonlWriter : IMetricsSink
{
    public const string DefaultFileName = "metrics.jsonl";

    readonly StreamWriter _writer;
    readonly Func<DateTimeOffset> _clock;

    /// <param name="path">The file; appended to if it exists (a resumed run continues the same log).</param>
    /// <param name="clock">Source of wall time (tests pass a fixed clock).</param>
    public MetricsJsonlWriter(string path, Func<DateTimeOffset>? clock = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _writer = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
    }

    public string Path { get; }

    public void Log(long step, IReadOnlyDictionary<string, double> scalars)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", step);
            json.WriteNumber("wall_time", (_clock() - DateTimeOffset.UnixEpoch).TotalSeconds);
            foreach (var (tag, value) in scalars)
            {
                // JSON has no NaN/Infinity; write them as strings so the record survives and stays visible.
                if (double.IsFinite(value)) json.WriteNumber(tag, value);
                else json.WriteString(tag, value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            json.WriteEndObject();
        }
        _writer.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        _writer.Flush();
    }

    public void Flush() => _writer.Flush();

    public void Dispose() => _writer.Dispose();
}
