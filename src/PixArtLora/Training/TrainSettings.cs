using System.Text.Json.Serialization;
using PixArtLora.Configs;

namespace PixArtLora.Training;

/// <summary>
/// Every setting of <c>lora train</c>. Names are the seed's / diffusers' LoRA script spellings; the CLI
/// accepts each as --snake_case and --kebab-case, and a YAML config (-c) uses the same keys.
/// Defaults follow diffusers' PixArt LoRA script unless a comment says otherwise.
/// </summary>
public sealed class TrainSettings
{
    // ---- model and mode
    [JsonPropertyName("pretrained_model_name_or_path"), SettingAlias("model_id", "model"), SettingHelp("registry variant, Hugging Face id or local diffusers folder")]
    public string Model { get; set; } = "sigma-512-ms";
    [JsonPropertyName("mode"), SettingHelp("lora (adapters only) or full (plain full fine-tune of the transformer)")]
    public string Mode { get; set; } = "lora";
    [JsonPropertyName("device"), SettingHelp("cpu, cuda or cuda:N")]
    public string Device { get; set; } = "cpu";
    [JsonPropertyName("mixed_precision"), SettingHelp("no or bf16 (the model holds and computes in bf16; LoRA adapters, full fine-tuning's master weights and optimizer state stay fp32); fp16 only on CUDA, where trainable weights stay fp32")]
    public string MixedPrecision { get; set; } = "no";
    [JsonPropertyName("revision"), SettingHelp("model revision on the Hub")]
    public string? Revision { get; set; }

    // ---- data
    [JsonPropertyName("dataset"), SettingAlias("dataset_name", "train_data_dir"), SettingHelp("dataset short name (pokemon), Hugging Face dataset id, parquet file or folder, or image folder")]
    public string? Dataset { get; set; }
    [JsonPropertyName("caption_column"), SettingHelp("caption column of a parquet / metadata.jsonl dataset")]
    public string? CaptionColumn { get; set; }
    [JsonPropertyName("image_column"), SettingHelp("image column of a parquet dataset")]
    public string? ImageColumn { get; set; }
    [JsonPropertyName("json_path"), SettingHelp("the official trainer's JSON label file (list of {path, prompt, sharegpt4v, height, width, ratio})")]
    public string? JsonPath { get; set; }
    [JsonPropertyName("image_dir"), SettingHelp("image folder the JSON labels' paths are relative to")]
    public string? ImageDir { get; set; }
    [JsonPropertyName("real_prompt_ratio"), SettingHelp("probability of the original prompt over sharegpt4v in JSON labels")]
    public double RealPromptRatio { get; set; } = 1.0;
    [JsonPropertyName("max_train_samples"), SettingHelp("use only the first N items")]
    public int? MaxTrainSamples { get; set; }
    [JsonPropertyName("resolution"), SettingHelp("training resolution (square side, or bucket base with --multi_scale)")]
    public int Resolution { get; set; } = 512;
    [JsonPropertyName("multi_scale"), SettingHelp("aspect-ratio buckets from the registry's table for --resolution")]
    public bool MultiScale { get; set; }
    [JsonPropertyName("center_crop"), SettingHelp("center crop instead of random crop")]
    public bool CenterCrop { get; set; }
    [JsonPropertyName("random_flip"), SettingHelp("random horizontal flip")]
    public bool RandomFlip { get; set; }
    [JsonPropertyName("proportion_empty_prompts"), SettingHelp("caption dropout probability for classifier-free guidance (official trainer: 0.1)")]
    public double ProportionEmptyPrompts { get; set; } = 0.1;
    [JsonPropertyName("max_token_length"), SettingAlias("max_sequence_length"), SettingHelp("T5 token length (registry: 120 for α, 300 for Σ)")]
    public int? MaxTokenLength { get; set; }
    [JsonPropertyName("no_cache"), SettingHelp("encode captions and images on the fly instead of using the feature caches")]
    public bool NoCache { get; set; }
    [JsonPropertyName("cache_dir"), SettingHelp("feature cache folder (default: <output_dir>/../cache)")]
    public string? CacheDir { get; set; }

    // ---- schedule
    [JsonPropertyName("train_batch_size"), SettingAlias("batch_size"), SettingHelp("images per step and device")]
    public int TrainBatchSize { get; set; } = 1;
    [JsonPropertyName("num_train_epochs"), SettingHelp("epochs (ignored when --max_train_steps is set)")]
    public int NumTrainEpochs { get; set; } = 100;
    [JsonPropertyName("max_train_steps"), SettingHelp("total optimizer steps; overrides --num_train_epochs")]
    public int? MaxTrainSteps { get; set; }
    [JsonPropertyName("gradient_accumulation_steps"), SettingHelp("micro-batches per optimizer step")]
    public int GradientAccumulationSteps { get; set; } = 1;
    [JsonPropertyName("gradient_checkpointing"), SettingHelp("recompute each transformer block in the backward pass to save memory")]
    public bool GradientCheckpointing { get; set; }
    [JsonPropertyName("attention_probabilities_mb"), SettingHelp("bf16 on CPU: keep an attention call's probabilities for backward when they take at most this many MB (~5% faster steps; 0 recomputes them, ~1.7 GB less at 512 px without checkpointing)")]
    public int AttentionProbabilitiesMb { get; set; } = (int)(Models.Transformer.ChunkedAttention.DefaultKeptProbabilityBudgetBytes >> 20);
    [JsonPropertyName("seed"), SettingHelp("seed for weights init, data order, noise and timesteps")]
    public int Seed { get; set; } = 0;

    // ---- optimizer
    [JsonPropertyName("optimizer"), SettingHelp("adamw or came (the official PixArt optimizer)")]
    public string Optimizer { get; set; } = "adamw";
    [JsonPropertyName("learning_rate"), SettingAlias("lr"), SettingHelp("peak learning rate")]
    public double LearningRate { get; set; } = 1e-4;
    [JsonPropertyName("scale_lr"), SettingHelp("multiply the learning rate by batch size × accumulation steps")]
    public bool ScaleLr { get; set; }
    [JsonPropertyName("lr_scheduler"), SettingHelp("constant, constant_with_warmup, linear, cosine, cosine_with_restarts or polynomial")]
    public string LrScheduler { get; set; } = "constant";
    [JsonPropertyName("lr_warmup_steps"), SettingHelp("warmup steps")]
    public int LrWarmupSteps { get; set; } = 500;
    [JsonPropertyName("lr_num_cycles"), SettingHelp("cycles of cosine_with_restarts")]
    public int LrNumCycles { get; set; } = 1;
    [JsonPropertyName("lr_power"), SettingHelp("power of the polynomial schedule")]
    public double LrPower { get; set; } = 1.0;
    [JsonPropertyName("adam_beta1")] public double AdamBeta1 { get; set; } = 0.9;
    [JsonPropertyName("adam_beta2")] public double AdamBeta2 { get; set; } = 0.999;
    [JsonPropertyName("adam_weight_decay")] public double AdamWeightDecay { get; set; } = 1e-2;
    [JsonPropertyName("adam_epsilon")] public double AdamEpsilon { get; set; } = 1e-8;
    [JsonPropertyName("max_grad_norm"), SettingHelp("clip gradients to this global norm (0 = off)")]
    public double MaxGradNorm { get; set; } = 1.0;

    // ---- objective
    [JsonPropertyName("loss"), SettingHelp("mse (eps MSE, as diffusers' scripts) or mse+vb (the official PixArt objective)")]
    public string Loss { get; set; } = "mse";
    [JsonPropertyName("snr_gamma"), SettingHelp("Min-SNR-γ loss weighting (e.g. 5.0); off when unset")]
    public double? SnrGamma { get; set; }
    [JsonPropertyName("noise_offset"), SettingHelp("noise offset (e.g. 0.05); 0 = off")]
    public double NoiseOffset { get; set; }

    // ---- LoRA
    [JsonPropertyName("rank"), SettingHelp("LoRA rank")]
    public int Rank { get; set; } = 16;
    [JsonPropertyName("lora_alpha"), SettingHelp("LoRA alpha (default: the rank, so scale 1)")]
    public double? LoraAlpha { get; set; }
    [JsonPropertyName("lora_dropout"), SettingHelp("dropout on the LoRA input")]
    public double LoraDropout { get; set; }
    [JsonPropertyName("use_rslora"), SettingHelp("scale = alpha / sqrt(rank)")]
    public bool UseRsLora { get; set; }
    [JsonPropertyName("lora_targets"), SettingHelp("attention (to_q,to_k,to_v,to_out.0), attention+ff, all-linear, or a comma list of module-name patterns")]
    public string LoraTargets { get; set; } = "attention";
    [JsonPropertyName("lora_blocks"), SettingHelp("only these transformer blocks, e.g. 10-27 or 0,1,5")]
    public string? LoraBlocks { get; set; }

    // ---- full fine-tune
    [JsonPropertyName("freeze"), SettingHelp("module-name patterns to keep frozen in --mode full")]
    public string[] Freeze { get; set; } = Array.Empty<string>();
    [JsonPropertyName("use_ema"), SettingHelp("keep an EMA of the weights (full mode)")]
    public bool UseEma { get; set; }
    [JsonPropertyName("ema_decay"), SettingHelp("EMA decay (official config: 0.9999)")]
    public double EmaDecay { get; set; } = 0.9999;

    // ---- outputs, checkpoints, validation
    [JsonPropertyName("output_dir"), SettingHelp("run folder (default: output/<run_name>)")]
    public string? OutputDir { get; set; }
    [JsonPropertyName("run_name"), SettingHelp("run name (default: <mode>-<model>-<timestamp>)")]
    public string? RunName { get; set; }
    [JsonPropertyName("checkpointing_steps"), SettingHelp("save a resumable checkpoint every N steps")]
    public int CheckpointingSteps { get; set; } = 500;
    [JsonPropertyName("checkpoints_total_limit"), SettingHelp("keep at most N checkpoints")]
    public int? CheckpointsTotalLimit { get; set; }
    [JsonPropertyName("resume_from_checkpoint"), SettingHelp("latest, or a checkpoint folder")]
    public string? ResumeFromCheckpoint { get; set; }
    [JsonPropertyName("validation_prompt"), SettingAlias("validation_prompts"), SettingHelp("prompt(s) rendered at each validation")]
    public string[] ValidationPrompt { get; set; } = Array.Empty<string>();
    [JsonPropertyName("validation_epochs"), SettingHelp("validate every N epochs")]
    public int ValidationEpochs { get; set; } = 1;
    [JsonPropertyName("num_validation_images"), SettingHelp("images per validation prompt")]
    public int NumValidationImages { get; set; } = 1;
    [JsonPropertyName("validation_steps"), SettingHelp("sampler steps for validation images")]
    public int ValidationSteps { get; set; } = 20;
    [JsonPropertyName("report_to"), SettingHelp("tensorboard or none (metrics.jsonl is always written)")]
    public string ReportTo { get; set; } = "tensorboard";
    [JsonPropertyName("logging_steps"), SettingHelp("log scalars every N steps")]
    public int LoggingSteps { get; set; } = 1;
}
