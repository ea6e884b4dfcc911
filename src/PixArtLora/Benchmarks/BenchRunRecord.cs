using System.Text.Json;
using System.Text.Json.Serialization;
using PixArtLora.Runtime;

namespace PixArtLora.Benchmarks;

/// <summary>What every timed benchmark record carries besides its own measurements: memory and the conditions of the run.</summary>
public abstract record BenchRunRecord
{
    [JsonPropertyName("peak_rss_bytes")] public long PeakRssBytes { get; init; }
    [JsonPropertyName("rss_before_model_bytes")] public long RssBeforeModelBytes { get; init; }
    /// <summary>True when the peak could not be reset before the measured part and covers the whole process.</summary>
    [JsonPropertyName("peak_rss_is_process_wide")] public bool PeakRssIsProcessWide { get; init; }
    /// <summary>CUDA runs: what <see cref="DeviceMemoryWatch"/> saw (null on CPU or without NVML); written as the three cuda_* fields.</summary>
    [JsonIgnore] public DeviceMemoryFigures? CudaMemory { get; init; }
    /// <summary>CUDA runs: the device's memory in use before the model was built.</summary>
    [JsonPropertyName("cuda_used_before_model_bytes")] public long? CudaUsedBeforeModelBytes => CudaMemory?.UsedBeforeBytes;
    /// <summary>CUDA runs: the highest device memory in use polled during the run.</summary>
    [JsonPropertyName("cuda_peak_used_bytes")] public long? CudaPeakUsedBytes => CudaMemory?.PeakUsedBytes;
    [JsonPropertyName("cuda_total_bytes")] public long? CudaTotalBytes => CudaMemory?.TotalBytes;

    /// <summary>Attention kernel used: sdpa (libtorch) or chunked (<see cref="Models.Transformer.ChunkedAttention"/>).</summary>
    [JsonPropertyName("attention_kernel")] public string? AttentionKernel { get; init; }
    /// <summary>Whether <see cref="CpuAllocatorTuning"/> was in effect.</summary>
    [JsonPropertyName("allocator_tuned")] public bool AllocatorTuned { get; init; }
    [JsonPropertyName("device")] public required string Device { get; init; }
    [JsonPropertyName("load_average_1m_start")] public double? LoadAverage1mStart { get; init; }
    [JsonPropertyName("load_average_1m_end")] public double? LoadAverage1mEnd { get; init; }
    [JsonPropertyName("torch_version")] public string? TorchVersion { get; init; }
    [JsonPropertyName("timestamp")] public DateTimeOffset Timestamp { get; init; }

    /// <summary>Indented JSON with snake_case keys, every property of the concrete record included.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, GetType(), BenchJson.Options);
}
