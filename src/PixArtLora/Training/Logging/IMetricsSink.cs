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

    /// <summary>The accepted values of <c>--report_to</c>.</summary>
    public static IReadOnlyList<string> ReportToValues { get; } = new[] { "tensorboard", "none" };

    /// <summary>
    /// The logs of a run in <paramref name="runDir"/>: always <c>metrics.jsonl</c>; with <c>--report_to tensorboard</c>
    /// (the default) also an event file under <c>logs/</c>, the folder diffusers' scripts log to.
    /// </summary>
    public static MetricsLog Open(string runDir, string reportTo = "tensorboard")
    {
        string value = reportTo.Trim().ToLowerInvariant();
        if (!ReportToValues.Contains(value))
            throw new ArgumentException($"--report_to '{reportTo}' is not supported here; valid values: {string.Join(", ", ReportToValues)} " +
                "(metrics.jsonl is always written)");
        var jsonl = new MetricsJsonlWriter(Path.Combine(runDir, MetricsJsonlWriter.DefaultFileName));
        return value == "tensorboard"
            ? new MetricsLog(jsonl, new TensorBoardWriter(Path.Combine(runDir, "logs")))
            : new MetricsLog(jsonl);
    }

    /// <summary>The TensorBoard writer among the sinks, if any (for images and text).</summary>
    public TensorBoardWriter? TensorBoard => _sinks.OfType<TensorBoardWriter>().FirstOrDefault();

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
