using System.Text.Json;
using System.Text.Json.Serialization;

namespace PixArtLora.Benchmarks;

/// <summary>The measurements of one <see cref="TransformerBenchmark"/> run, as written to JSON (snake_case keys).</summary>
public sealed record TransformerBenchResult : BenchRunRecord
{
    [JsonPropertyName("variant")] public required string Variant { get; init; }
    [JsonPropertyName("resolution")] public required int Resolution { get; init; }
    [JsonPropertyName("dtype")] public required string Dtype { get; init; }
    [JsonPropertyName("mode")] public required string Mode { get; init; }
    [JsonPropertyName("gradient_checkpointing")] public bool GradientCheckpointing { get; init; }
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; }
    [JsonPropertyName("warmup")] public int Warmup { get; init; }
    /// <summary>Image tokens per latent (N).</summary>
    [JsonPropertyName("image_tokens")] public long ImageTokens { get; init; }
    [JsonPropertyName("caption_tokens")] public long CaptionTokens { get; init; }
    [JsonPropertyName("lora_rank")] public int? LoraRank { get; init; }
    [JsonPropertyName("parameters")] public long Parameters { get; init; }
    [JsonPropertyName("trainable_parameters")] public long TrainableParameters { get; init; }
    [JsonPropertyName("adapter_parameters")] public long? AdapterParameters { get; init; }
    [JsonPropertyName("weight_bytes")] public long WeightBytes { get; init; }

    [JsonPropertyName("seconds_per_step")] public IReadOnlyList<double> SecondsPerStep { get; init; } = Array.Empty<double>();
    [JsonPropertyName("seconds_per_step_median")] public double SecondsPerStepMedian { get; init; }
    [JsonPropertyName("seconds_per_step_min")] public double SecondsPerStepMin { get; init; }
    /// <summary>CPU seconds this process spent per step (median): less sensitive to other processes' load than wall time.</summary>
    [JsonPropertyName("cpu_seconds_per_step_median")] public double CpuSecondsPerStepMedian { get; init; }
    /// <summary>Forward part of a training step (median over timed steps; lora/full only).</summary>
    [JsonPropertyName("forward_seconds_median")] public double? ForwardSecondsMedian { get; init; }
    /// <summary>Minor page faults per timed step (warm-up excluded, so the first step's growth of the heap is not spread over the others): fresh memory the kernel had to map and zero.</summary>
    [JsonPropertyName("page_faults_per_step")] public long PageFaultsPerStep { get; init; }
    [JsonPropertyName("images_per_s")] public double ImagesPerSecond { get; init; }

    /// <summary>Analytic FLOPs of one step (<see cref="TransformerFlops"/>), recomputation included.</summary>
    [JsonPropertyName("model_flops_per_step")] public double ModelFlopsPerStep { get; init; }
    [JsonPropertyName("flops_breakdown")] public FlopCount? Flops { get; init; }
    [JsonPropertyName("achieved_flops_per_s")] public double AchievedFlopsPerSecond { get; init; }
    [JsonPropertyName("gemm_size")] public int GemmSize { get; init; }
    /// <summary>This process's square-GEMM throughput in the run's dtype (fastest of the probe's products).</summary>
    [JsonPropertyName("gemm_flops_per_s")] public double GemmFlopsPerSecond { get; init; }
    [JsonPropertyName("gemm_median_flops_per_s")] public double GemmMedianFlopsPerSecond { get; init; }
    /// <summary>Model FLOP utilisation: achieved_flops_per_s / gemm_flops_per_s.</summary>
    [JsonPropertyName("mfu")] public double Mfu { get; init; }
    /// <summary>The GEMM probe rerun (fastest of 3) right after each timed step, in step order.</summary>
    [JsonPropertyName("gemm_flops_per_s_after_steps")] public IReadOnlyList<double> GemmFlopsPerSecondAfterSteps { get; init; } = Array.Empty<double>();
    /// <summary>
    /// Median over the timed steps of (model FLOPs ÷ that step's seconds ÷ the probe right after it): MFU with each step
    /// measured against the machine's speed at that moment, less sensitive to a shared machine's drift than <see cref="Mfu"/>.
    /// </summary>
    [JsonPropertyName("mfu_step_matched")] public double MfuStepMatched { get; init; }
}

/// <summary>JSON settings shared by the benchmark reports.</summary>
public static class BenchJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,   // for records without explicit names (FlopCount)
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
