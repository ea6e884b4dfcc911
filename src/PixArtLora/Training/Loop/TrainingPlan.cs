using System.Globalization;
using PixArtLora.Diffusion;
using PixArtLora.Training.Logging;
using PixArtLora.Training.Optimizers;
using PixArtLora.Training.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Training.Loop;

/// <summary>What is trained: LoRA adapters only, or the transformer itself.</summary>
public enum TrainingMode { Lora, Full }

/// <summary>
/// <see cref="TrainSettings"/> checked and turned into the values the loop runs with: parsed device and dtypes, loss,
/// run folder. Every bad value fails here, before anything is loaded, with a message naming the setting.
/// </summary>
public sealed class TrainingPlan
{
    public required TrainSettings Settings { get; init; }
    public required TrainingMode Mode { get; init; }
    public required Device Device { get; init; }
    /// <summary>Dtype of frozen weights (the base transformer in LoRA mode, frozen parts in full mode).</summary>
    public required ScalarType FrozenDtype { get; init; }
    /// <summary>Dtype of trainable weights and optimizer state: always float32.</summary>
    public ScalarType TrainableDtype => ScalarType.Float32;
    public required DiffusionLoss Loss { get; init; }
    public required string RunName { get; init; }
    /// <summary>The run folder: checkpoints, logs, validation images and outputs.</summary>
    public required string OutputDir { get; init; }
    /// <summary>Feature caches (text embeddings, latents), shared between runs.</summary>
    public required string CacheDir { get; init; }
    /// <summary>A checkpoint folder to continue from, or null for a fresh run.</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>The accepted values of <c>--mixed_precision</c>.</summary>
    public static IReadOnlyList<string> MixedPrecisionValues { get; } = new[] { "no", "bf16", "fp16" };

    /// <summary>Validates <paramref name="settings"/>; <paramref name="now"/> names runs that have no --run_name.</summary>
    public static TrainingPlan From(TrainSettings settings, DateTimeOffset? now = null)
    {
        var s = settings;
        var mode = s.Mode.Trim().ToLowerInvariant() switch
        {
            "lora" => TrainingMode.Lora,
            "full" or "full-finetune" or "finetune" => TrainingMode.Full,
            _ => throw new ArgumentException($"--mode '{s.Mode}': expected lora or full"),
        };
        var device = ParseDevice(s.Device);
        var frozen = ParseMixedPrecision(s.MixedPrecision, device);
        var loss = TrainingObjective.ParseLoss(s.Loss);

        Require(s.TrainBatchSize >= 1, "--train_batch_size", s.TrainBatchSize, "at least 1");
        Require(s.AttentionProbabilitiesMb >= 0, "--attention_probabilities_mb", s.AttentionProbabilitiesMb, "0 or more");
        Require(s.GradientAccumulationSteps >= 1, "--gradient_accumulation_steps", s.GradientAccumulationSteps, "at least 1");
        Require(s.NumTrainEpochs >= 1 || s.MaxTrainSteps is not null, "--num_train_epochs", s.NumTrainEpochs, "at least 1 (or set --max_train_steps)");
        Require(s.MaxTrainSteps is null or >= 1, "--max_train_steps", s.MaxTrainSteps, "at least 1");
        Require(s.CheckpointingSteps >= 1, "--checkpointing_steps", s.CheckpointingSteps, "at least 1");
        Require(s.CheckpointsTotalLimit is null or >= 1, "--checkpoints_total_limit", s.CheckpointsTotalLimit, "at least 1");
        Require(s.ValidationEpochs >= 1, "--validation_epochs", s.ValidationEpochs, "at least 1");
        Require(s.NumValidationImages >= 1, "--num_validation_images", s.NumValidationImages, "at least 1");
        Require(s.ValidationSteps >= 1, "--validation_steps", s.ValidationSteps, "at least 1");
        Require(s.LoggingSteps >= 1, "--logging_steps", s.LoggingSteps, "at least 1");
        Require(s.LearningRate > 0 && double.IsFinite(s.LearningRate), "--learning_rate", s.LearningRate, "a positive number");
        Require(s.MaxGradNorm >= 0, "--max_grad_norm", s.MaxGradNorm, "0 (off) or positive");
        Require(s.ProportionEmptyPrompts is >= 0 and <= 1, "--proportion_empty_prompts", s.ProportionEmptyPrompts, "in [0, 1]");
        Require(s.RealPromptRatio is >= 0 and <= 1, "--real_prompt_ratio", s.RealPromptRatio, "in [0, 1]");
        Require(s.NoiseOffset >= 0, "--noise_offset", s.NoiseOffset, "0 (off) or positive");
        Require(s.SnrGamma is null or > 0, "--snr_gamma", s.SnrGamma, "positive (or unset)");
        Require(s.Resolution >= 16 && s.Resolution % 16 == 0, "--resolution", s.Resolution, "a positive multiple of 16 (8 for the VAE × the patch size 2)");
        Require(s.MaxTokenLength is null or >= 1, "--max_token_length", s.MaxTokenLength, "at least 1");
        Require(s.MaxTrainSamples is null or >= 1, "--max_train_samples", s.MaxTrainSamples, "at least 1");
        Require(s.EmaDecay is >= 0 and <= 1, "--ema_decay", s.EmaDecay, "in [0, 1]");
        if (!OptimizerFactory.Names.Contains(s.Optimizer.Trim().ToLowerInvariant()))
            throw new ArgumentException($"--optimizer '{s.Optimizer}': expected one of {string.Join(", ", OptimizerFactory.Names)}");
        if (!LearningRateSchedule.Names.Contains(s.LrScheduler.Trim().ToLowerInvariant()))
            throw new ArgumentException($"--lr_scheduler '{s.LrScheduler}': expected one of {string.Join(", ", LearningRateSchedule.Names)}");
        if (!MetricsLog.ReportToValues.Contains(s.ReportTo.Trim().ToLowerInvariant()))
            throw new ArgumentException($"--report_to '{s.ReportTo}': expected one of {string.Join(", ", MetricsLog.ReportToValues)} (metrics.jsonl is always written)");
        if (mode == TrainingMode.Lora)
        {
            Require(s.Rank >= 1, "--rank", s.Rank, "at least 1");
            Require(s.LoraAlpha is null or > 0, "--lora_alpha", s.LoraAlpha, "positive");
            Require(s.LoraDropout is >= 0 and < 1, "--lora_dropout", s.LoraDropout, "in [0, 1)");
            if (s.UseEma) throw new ArgumentException("--use_ema applies to --mode full; LoRA mode keeps no EMA");
            if (s.Freeze.Length > 0) throw new ArgumentException("--freeze applies to --mode full; in LoRA mode the whole base model is frozen");
        }
        if (s.Dataset is null && s.JsonPath is null)
            throw new ArgumentException("no training data: give --dataset (a short name such as pokemon or shapes, a Hugging Face dataset id, " +
                                        "a parquet file or folder, or an image folder) or --json_path");

        var stamp = (now ?? DateTimeOffset.Now).ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        string? resumePath = null;
        string outputDir;
        string runName;
        if (s.OutputDir is { Length: > 0 } given)
        {
            outputDir = Path.GetFullPath(given);
            runName = s.RunName ?? Path.GetFileName(outputDir.TrimEnd(Path.DirectorySeparatorChar));
        }
        else if (s.ResumeFromCheckpoint is { } r && !IsLatest(r) && Directory.Exists(r))
        {
            // Resuming from a checkpoint path without --output_dir: continue in the run folder that holds it.
            resumePath = Path.GetFullPath(r);
            outputDir = Path.GetDirectoryName(resumePath.TrimEnd(Path.DirectorySeparatorChar))!;
            runName = s.RunName ?? Path.GetFileName(outputDir);
        }
        else
        {
            runName = s.RunName ?? $"{s.Mode.Trim().ToLowerInvariant()}-{SafeName(s.Model)}-{stamp}";
            if (runName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || runName is "." or "..")
                throw new ArgumentException($"--run_name '{runName}' is not a valid folder name");
            outputDir = Path.GetFullPath(Path.Combine("output", runName));
        }
        if (s.ResumeFromCheckpoint is { } latest && IsLatest(latest) && s.OutputDir is null && s.RunName is null)
            throw new ArgumentException("--resume_from_checkpoint latest needs the run folder: give --output_dir (or --run_name) of the run to continue");
        string cacheDir = s.CacheDir is { Length: > 0 } c ? Path.GetFullPath(c) : Path.Combine(Path.GetDirectoryName(outputDir)!, "cache");

        return new TrainingPlan
        {
            Settings = s, Mode = mode, Device = device, FrozenDtype = frozen, Loss = loss,
            RunName = runName, OutputDir = outputDir, CacheDir = cacheDir, ResumeFrom = resumePath,
        };
    }

    /// <summary>Parses <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>, checking that CUDA is there when asked for.</summary>
    public static Device ParseDevice(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return CPU;
        if (t == "cuda" || t.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (t.Length > 5 && !int.TryParse(t[5..], NumberStyles.None, CultureInfo.InvariantCulture, out index))
                throw new ArgumentException($"--device '{text}': expected cpu, cuda or cuda:N");
            if (!cuda.is_available())
                throw new ArgumentException($"--device {text}: CUDA is not available in this build or on this machine " +
                                            "(build with -p:TorchBackend=cuda on a machine with an NVIDIA driver, or use --device cpu)");
            if (index >= cuda.device_count())
                throw new ArgumentException($"--device {text}: there are only {cuda.device_count()} CUDA device(s)");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"--device '{text}': expected cpu, cuda or cuda:N");
    }

    /// <summary>The dtype of frozen weights for <c>--mixed_precision</c>; fp16 is refused on the CPU.</summary>
    public static ScalarType ParseMixedPrecision(string text, Device device)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "no" or "fp32" or "none": return ScalarType.Float32;
            case "bf16" or "bfloat16": return ScalarType.BFloat16;
            case "fp16" or "float16":
                if (device.type == DeviceType.CPU)
                    throw new ArgumentException("--mixed_precision fp16 is not supported on the CPU: libtorch's CPU float16 kernels are " +
                                                "orders of magnitude slower than float32 (about 0.3 GFLOP/s measured), which makes training unusable. " +
                                                "Use --mixed_precision bf16 (frozen weights in bfloat16, about 4x faster than float32 on CPU) or no, or train on CUDA.");
                return ScalarType.Float16;
            default:
                throw new ArgumentException($"--mixed_precision '{text}': expected one of {string.Join(", ", MixedPrecisionValues)}");
        }
    }

    /// <summary>True for the value <c>latest</c> of --resume_from_checkpoint.</summary>
    public static bool IsLatest(string value) => string.Equals(value.Trim(), "latest", StringComparison.OrdinalIgnoreCase);

    static string SafeName(string model)
    {
        string name = Path.GetFileName(model.TrimEnd('/', '\\'));
        var chars = name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '-').ToArray();
        return chars.Length == 0 ? "model" : new string(chars);
    }

    static void Require(bool ok, string option, object? value, string expected)
    {
        if (!ok) throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{option} {value ?? "null"}: expected {expected}"));
    }
}
