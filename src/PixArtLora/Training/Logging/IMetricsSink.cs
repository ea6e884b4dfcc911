namespace PixArtLora.Training.Logging;

/// <summary>Something that records scalar training metrics (TensorBoard, metrics.jsonl, ...).</summary>
public interface IMetricsSink : IDisposable
{
    /// <summary>Records <paramref name="scalars"/> (tag → value) at <paramref name="step"/>.</summary>
    void Log(long step, IReadOnlyDictionary<string, double> scalars);

    /// <summary>Pushes buffered records to the file system.</summary>
    void Flush();
}

/// <summary>Sends every record to several sinks (e.g. TensorBoard and metrics.jsonl).</summary>
public sealed class MetricsLog : IMetricsSink
{
    readonly List<IMetricsSink> _sinks;

    public MetricsLog(params IMetricsSink[] sinks) => _sinks = sinks.ToList();

    public IReadOnlyList<IMetricsSink> Sinks => _sinks;

    public void Log(long step, IReadOnlyDictionary<string, double> scalars)
    {
        foreach (var s in _sinks) s.Log(step, scalars);
    }

    public void Flush()
    {
        foreach (var s in _sinks) s.Flush();
    }

    public void Dispose()
    {
        foreach (var s in _sinks) s.Dispose();
    }
}
