using System.Text.Json.Serialization;

namespace PixArtLora.Benchmarks;

/// <summary>The measurements of one <see cref="EndToEndRun"/>, as written to JSON (snake_case keys).</summary>
public sealed record EndToEndBenchResult : BenchRunRecord
{
    /// <summary>Registry id of the variant, or the model's name when it is not a registry variant.</summary>
    [JsonPropertyName("variant")] public required string Variant { get; init; }
    /// <summary>What was run: the <c>--model_id</c> given, or <c>random weights</c>.</summary>
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("random_weights")] public bool RandomWeights { get; init; }
    /// <summary>Square image side in pixels.</summary>
    [JsonPropertyName("resolution")] public required int Resolution { get; init; }
    /// <summary>Transformer and VAE dtype.</summary>
    [JsonPropertyName("dtype")] public required string Dtype { get; init; }
    [JsonPropertyName("text_encoder_dtype")] public required string TextEncoderDtype { get; init; }
    [JsonPropertyName("sampler")] public required string Sampler { get; init; }
    /// <summary>Sampler steps per image.</summary>
    [JsonPropertyName("infer_steps")] public int InferSteps { get; init; }
    [JsonPropertyName("guidance_scale")] public double GuidanceScale { get; init; }
    /// <summary>Rows per transformer call: 2 with classifier-free guidance.</summary>
    [JsonPropertyName("transformer_batch")] public int TransformerBatch { get; init; }
    [JsonPropertyName("caption_tokens")] public int CaptionTokens { get; init; }
    /// <summary>Timed images (each way); median and minimum reported.</summary>
    [JsonPropertyName("steps")] public int Steps { get; init; }
    [JsonPropertyName("warmup")] public int Warmup { get; init; }

    /// <summary>Building (random weights) or loading every model, and the first prompt encode.</summary>
    [JsonPropertyName("setup_seconds")] public double SetupSeconds { get; init; }
    /// <summary>Seconds per image from an already encoded prompt: sampler loop and VAE decode.</summary>
    [JsonPropertyName("seconds_per_image")] public IReadOnlyList<double> SecondsPerImage { get; init; } = Array.Empty<double>();
    [JsonPropertyName("seconds_per_image_median")] public double SecondsPerImageMedian { get; init; }
    [JsonPropertyName("seconds_per_image_min")] public double SecondsPerImageMin { get; init; }
    [JsonPropertyName("cpu_seconds_per_image_median")] public double CpuSecondsPerImageMedian { get; init; }
    /// <summary>Seconds per image with the prompt encoded by T5 (already loaded) each time.</summary>
    [JsonPropertyName("seconds_per_image_with_text_encoder")] public IReadOnlyList<double> SecondsPerImageWithTextEncoder { get; init; } = Array.Empty<double>();
    [JsonPropertyName("seconds_per_image_with_text_encoder_median")] public double SecondsPerImageWithTextEncoderMedian { get; init; }
    [JsonPropertyName("seconds_per_image_with_text_encoder_min")] public double SecondsPerImageWithTextEncoderMin { get; init; }
    /// <summary>Encoding the prompt and the negative prompt, in each run with T5 (in order).</summary>
    [JsonPropertyName("text_encoder_seconds")] public IReadOnlyList<double> TextEncoderSeconds { get; init; } = Array.Empty<double>();
    /// <summary>Encoding the prompt and the negative prompt (median).</summary>
    [JsonPropertyName("text_encoder_seconds_median")] public double TextEncoderSecondsMedian { get; init; }
    /// <summary>The sampler loop divided by its steps: one transformer call (batch <see cref="TransformerBatch"/>) and the update (median).</summary>
    [JsonPropertyName("transformer_seconds_per_sampler_step_median")] public double TransformerSecondsPerSamplerStepMedian { get; init; }
    /// <summary>The same in the runs that encode the prompt first (median): tells a slower sampler after T5 from T5's own time.</summary>
    [JsonPropertyName("transformer_seconds_per_sampler_step_with_text_encoder_median")] public double TransformerSecondsPerSamplerStepWithTextEncoderMedian { get; init; }
    /// <summary>VAE decode and post-processing (median).</summary>
    [JsonPropertyName("vae_decode_seconds_median")] public double VaeDecodeSecondsMedian { get; init; }
    [JsonPropertyName("images_per_s")] public double ImagesPerSecond { get; init; }
}
