using System.Text.Json;
using System.Text.Json.Serialization;

namespace PixArtLora.Benchmarks;

/// <summary>Loading one checkpoint into a model of one dtype.</summary>
public sealed record LoadFigures
{
    [JsonPropertyName("dtype")] public required string Dtype { get; init; }
    /// <summary><c>FromPretrained</c>: config, model, every tensor read into it.</summary>
    [JsonPropertyName("seconds_median")] public double SecondsMedian { get; init; }
    [JsonPropertyName("seconds_min")] public double SecondsMin { get; init; }
    /// <summary>Building the model with its random initialisation and then reading the weights (one run): the cost
    /// <c>FromPretrained</c> avoids by building on the meta device.</summary>
    [JsonPropertyName("random_init_then_load_seconds")] public double RandomInitThenLoadSeconds { get; init; }
    [JsonPropertyName("weight_bytes")] public long WeightBytes { get; init; }
    [JsonPropertyName("rss_before_bytes")] public long RssBeforeBytes { get; init; }
    [JsonPropertyName("peak_rss_bytes")] public long PeakRssBytes { get; init; }
    /// <summary>Load time ÷ the time to read the files into a fresh buffer.</summary>
    [JsonPropertyName("over_raw_read")] public double OverRawRead { get; init; }
    /// <summary>Load time ÷ the time to stream the files through a small reused buffer (page-cache copy only).</summary>
    [JsonPropertyName("over_streaming_read")] public double OverStreamingRead { get; init; }
    /// <summary>Peak RSS ÷ weight bytes (the process baseline included).</summary>
    [JsonPropertyName("peak_rss_over_weights")] public double PeakRssOverWeights { get; init; }
    /// <summary>(Peak RSS − RSS before loading) ÷ weight bytes: what loading itself costs.</summary>
    [JsonPropertyName("peak_rss_increase_over_weights")] public double PeakRssIncreaseOverWeights { get; init; }
}

/// <summary>The output of <see cref="LoadBenchmark.Run"/>, as written to JSON.</summary>
public sealed record LoadBenchResult
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("files")] public IReadOnlyList<string> Files { get; init; } = Array.Empty<string>();
    [JsonPropertyName("file_bytes")] public long FileBytes { get; init; }
    [JsonPropertyName("stored_dtype")] public string? StoredDtype { get; init; }
    [JsonPropertyName("repeats")] public int Repeats { get; init; }
    [JsonPropertyName("raw_read_seconds_median")] public double RawReadSecondsMedian { get; init; }
    [JsonPropertyName("raw_read_seconds_min")] public double RawReadSecondsMin { get; init; }
    [JsonPropertyName("streaming_read_seconds_median")] public double StreamingReadSecondsMedian { get; init; }
    [JsonPropertyName("loads")] public IReadOnlyList<LoadFigures> Loads { get; init; } = Array.Empty<LoadFigures>();
    [JsonPropertyName("device")] public required string Device { get; init; }
    [JsonPropertyName("load_average_1m_start")] public double? LoadAverage1mStart { get; init; }
    [JsonPropertyName("load_average_1m_end")] public double? LoadAverage1mEnd { get; init; }
    [JsonPropertyName("timestamp")] public DateTimeOffset Timestamp { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, BenchJson.Options);
}
