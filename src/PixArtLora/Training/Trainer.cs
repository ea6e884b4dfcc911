using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PixArtLora.Diffusion;
using PixArtLora.Hub;
using PixArtLora.IO;
using PixArtLora.Models.Transformer;
using PixArtLora.Training.Checkpoints;
using PixArtLora.Training.Diagnostics;
using PixArtLora.Training.Logging;
using PixArtLora.Training.Loop;
using PixArtLora.Training.Optimizers;
using PixArtLora.Training.Progress;
using PixArtLora.Training.Schedules;
using static TorchSharp.torch;

namespace PixArtLora.Training;

/// <summary>
/// <c>lora train</c> as a library call: LoRA or full fine-tuning of a PixArt transformer on an image-caption dataset,
/// with feature caches, checkpoints that resume bit-exactly, validation images, TensorBoard and metrics.jsonl logs.
/// </summary>
/// <example><code>
/// var result = Trainer.Run(new TrainSettings { Model = "tiny", Dataset = "shapes", Resolution = 256, MaxTrainSteps = 200 });
/// Console.WriteLine(result.Outputs.LoraFile);
/// </code></example>
public static class Trainer
{
    /// <summary>The effective settings, written into the run folder at start.</summary>
    public const string SettingsFileName = "training_settings.json";

    /// <summary>
    /// Runs training as <paramref name="settings"/> say, resuming when <c>--resume_from_checkpoint</c> is set. Returns when
    /// the last step is done (outputs written) or a stop was requested (checkpoint written). Bad settings, missing files and
    /// a non-finite loss throw with a message naming the cause.
    /// </summary>
    public static TrainingResult Run(TrainSettings settings, TrainerOptions? options = null)
    {
        options ??= new TrainerOptions();
        var log = options.Log ?? Console.WriteLine;
        var warn = options.Warn ?? (m => Console.Error.WriteLine($"warning: {m}"));
        var clock = Stopwatch.StartNew();
        var plan = TrainingPlan.From(settings);
        var s = plan.Settings;

        Directory.CreateDirectory(plan.OutputDir);
        CheckpointDirectory.DeleteStaleTemporaryFolders(plan.OutputDir);
        string? resumeFrom = ResolveResume(plan, log);

        var ownStop = options.Stop is null ? StopRequest.Install() : null;
        var stop = options.Stop ?? ownStop!;
        var ownProgress = options.Progress is null ? TextProgressReporter.ForConsole() : null;
        var progress = options.Progress ?? ownProgress!;
        HubClient? hubClient = null;
        HubClient Hub() => hubClient ??= new HubClient(options.Hub ?? HubOptions.FromEnvironment());
        try
        {
            var (files, data, tokens, totalSteps, epochs) = Prepare(plan, options, Hub, log, warn);
            using var feed = TrainingDataFeed.Open(plan, files, data, tokens, epochs, s.ValidationPrompt, log, stop.Token);
            using var random = new TrainingRandom(s.Seed);
            using var model = LoadModel(plan, files);
            model.UseDropoutGenerator(random.Stream("lora_dropout"));
            log(model.ToString());
            var objective = CreateObjective(plan, files, model.Model.Config);

            double baseLr = s.LearningRate * (s.ScaleLr ? s.TrainBatchSize * s.GradientAccumulationSteps : 1);
            bool adam = s.Optimizer.Trim().Equals("adamw", StringComparison.OrdinalIgnoreCase);
            using var optimizer = OptimizerFactory.Create(s.Optimizer, model.Trainable, baseLr, s.AdamWeightDecay,
                epsilon: adam ? s.AdamEpsilon : null, beta1: s.AdamBeta1, beta2: s.AdamBeta2);
            var schedule = LearningRateSchedule.Create(s.LrScheduler, baseLr, s.LrWarmupSteps, totalSteps, s.LrNumCycles, s.LrPower);
            using var ema = plan.Mode == TrainingMode.Full && s.UseEma
                ? new ExponentialMovingAverage(model.Trainable, new EmaSettings(Decay: s.EmaDecay)) : null;

            var facts = model.Describe(s.Model);
            var parts = new TrainingStateParts { TrainableWeights = model.Trainable, Optimizer = optimizer, Schedule = schedule, Ema = ema, Random = random };
            var position = TrainingPosition.Start;
            if (resumeFrom is not null)
            {
                position = Resume(resumeFrom, parts, facts, schedule, log, warn);
                model.SyncWorkingWeights();   // the checkpoint restored the float32 masters
            }

            WriteSettings(plan);
            using var metrics = MetricsLog.Open(plan.OutputDir, s.ReportTo);
            metrics.TensorBoard?.MarkSessionStart(position.GlobalStep);
            metrics.TensorBoard?.AddText("settings", File.ReadAllText(Path.Combine(plan.OutputDir, SettingsFileName)), position.GlobalStep);

            var validation = s.ValidationPrompt.Length == 0 ? null : new TrainingValidation
            {
                Plan = plan, Model = model, Vae = feed.Vae, Scheduler = SchedulerOf(files), Variant = files.Variant, Tokens = tokens,
                Encode = feed.EncodePrompts, Ema = ema, TensorBoard = metrics.TensorBoard, Log = progress.Message,
            };
            var loop = new TrainingLoop
            {
                Plan = plan, Model = model, Batches = feed, Objective = objective, Optimizer = optimizer, Schedule = schedule,
                Ema = ema, Random = random, Metrics = metrics, Progress = progress, Stop = stop,
                VaeScalingFactor = VaeScalingFactor(files), TotalSteps = totalSteps, TotalEpochs = epochs,
                CheckpointFacts = facts, AfterStep = options.AfterStep, Validate = validation is null ? null : validation.Run,
            };
            var (reason, end) = loop.Run(position, resumeFrom);

            var outputs = new TrainingOutputs(null, null, null, null);
            if (reason == TrainingStopReason.Completed)
            {
                outputs = model.SaveOutputs(plan.OutputDir, OutputMetadata(plan, files, end), ema);
                foreach (var path in outputs.All) log($"wrote {path}");
                validation?.Run(end.GlobalStep, (int)end.Epoch);
                options.OnTrained?.Invoke(model, ema);
            }
            loop.Memory.Sample();
            metrics.Log(end.GlobalStep, loop.Memory.ToMetrics());
            metrics.Flush();
            string summary = string.Create(CultureInfo.InvariantCulture,
                    $"{(reason == TrainingStopReason.Completed ? "finished" : "stopped")} at step {end.GlobalStep}/{totalSteps} in {clock.Elapsed:hh\\:mm\\:ss}")
                + (loop.Memory.PeakResidentBytes is long rss ? $"; peak RSS {MemoryUsage.Format(rss)}" : "")
                + (loop.Memory.PeakDeviceUsedBytes is long dev ? $"; peak CUDA memory {MemoryUsage.Format(dev)}" : "");
            progress.Finish(summary);
            if (reason == TrainingStopReason.StopRequested)
                log($"resume with: lora train ... --output_dir {plan.OutputDir} --resume_from_checkpoint latest");
            return new TrainingResult
            {
                OutputDir = plan.OutputDir, GlobalStep = end.GlobalStep, TotalSteps = totalSteps, StopReason = reason, Outputs = outputs,
                LastCheckpoint = loop.LastCheckpoint, ResumedFrom = resumeFrom, Losses = loop.Losses, ValidationImages = validation?.Images ?? new List<string>(),
                Elapsed = clock.Elapsed, PeakResidentBytes = loop.Memory.PeakResidentBytes, TrainableParameters = model.TrainableCount,
            };
        }
        finally
        {
            hubClient?.Dispose();
            ownProgress?.Dispose();
            ownStop?.Dispose();
        }
    }

    /// <summary>
    /// Fills the feature caches a run with <paramref name="settings"/> would use (<c>lora cache</c>): T5 features of every caption,
    /// the empty prompt and the validation prompts, and VAE posteriors of every image as the run's epochs will crop and flip it.
    /// A later <see cref="Run"/> with the same settings then loads neither T5 nor the VAE encoder's inputs from scratch.
    /// </summary>
    /// <returns>The cache folder and how many captions and images had to be encoded (0 and 0: everything was cached).</returns>
    public static (string CacheDir, int EncodedCaptions, int EncodedImages) PrepareFeatures(TrainSettings settings, TrainerOptions? options = null)
    {
        options ??= new TrainerOptions();
        var log = options.Log ?? Console.WriteLine;
        var warn = options.Warn ?? (m => Console.Error.WriteLine($"warning: {m}"));
        if (settings.NoCache) throw new ArgumentException("--no_cache turns the feature caches off; lora cache fills them, so drop --no_cache");
        var plan = TrainingPlan.From(settings);
        HubClient? hubClient = null;
        HubClient Hub() => hubClient ??= new HubClient(options.Hub ?? HubOptions.FromEnvironment());
        try
        {
            var (files, data, tokens, _, epochs) = Prepare(plan, options, Hub, log, warn);
            using var feed = TrainingDataFeed.Open(plan, files, data, tokens, epochs, settings.ValidationPrompt, log, options.Stop?.Token ?? default);
            return (plan.CacheDir, feed.EncodedCaptions, feed.EncodedImages);
        }
        finally { hubClient?.Dispose(); }
    }

    /// <summary>Resolves the model files and opens the data; computes the run's length in steps and epochs.</summary>
    static (TrainingModelFiles Files, TrainingDataset Data, int Tokens, long TotalSteps, int Epochs) Prepare(TrainingPlan plan,
        TrainerOptions options, Func<HubClient> hub, Action<string> log, Action<string> warn)
    {
        var s = plan.Settings;
        // Models and data first: the cheapest place to fail on a typo.
        var files = TrainingModelFiles.Resolve(s.Model, s.Revision, hub, options.HubProgress, options.ModelsRoot);
        int tokens = s.MaxTokenLength ?? files.CaptionTokens ?? throw new ArgumentException(
            $"the T5 token length of {files} is unknown: give --max_token_length (120 for PixArt-α, 300 for PixArt-Σ)");
        log($"model: {files}; {tokens} caption tokens; device {plan.Device}, model weights {plan.FrozenDtype} (trainable ones: {(plan.Mode == TrainingMode.Full && plan.FrozenDtype == ScalarType.BFloat16 ? "float32 masters" : "float32")})");
        var data = TrainingDataset.Open(s, hub, warn, options.SamplesRoot, options.HubProgress);
        log($"data: {data.Dataset.Description}: {data.Dataset.Count} images; {data.Buckets.Describe()}");

        int batchesPerEpoch = data.Sampler.BatchesPerEpoch;
        long updatesPerEpoch = Math.Max(1, (batchesPerEpoch + s.GradientAccumulationSteps - 1) / s.GradientAccumulationSteps);
        long totalSteps = s.MaxTrainSteps ?? s.NumTrainEpochs * updatesPerEpoch;
        int epochs = (int)((totalSteps * s.GradientAccumulationSteps + batchesPerEpoch - 1) / batchesPerEpoch);
        log(string.Create(CultureInfo.InvariantCulture,
            $"schedule: {totalSteps} steps of {s.TrainBatchSize} x {s.GradientAccumulationSteps} images, {epochs} epoch(s) of {batchesPerEpoch} batches"));
        return (files, data, tokens, totalSteps, epochs);
    }

    /// <summary>The checkpoint to continue from: the plan's path, <c>latest</c> under the run folder (none: a fresh start), or a named one.</summary>
    static string? ResolveResume(TrainingPlan plan, Action<string> log)
    {
        if (plan.ResumeFrom is { } path) return CheckpointDirectory.Resolve(plan.OutputDir, path);
        if (plan.Settings.ResumeFromCheckpoint is not { Length: > 0 } value) return null;
        var found = CheckpointDirectory.Resolve(plan.OutputDir, value);
        if (found is null) log($"--resume_from_checkpoint latest: {plan.OutputDir} has no checkpoint yet; starting a new run");
        return found;
    }

    static TrainingPosition Resume(string checkpoint, TrainingStateParts parts, JsonObject facts, LearningRateSchedule schedule,
        Action<string> log, Action<string> warn)
    {
        var saved = TrainingCheckpoint.ReadManifest(checkpoint);
        var differences = facts.Where(kv => saved.Extra[kv.Key]?.ToJsonString() != kv.Value?.ToJsonString())
            .Select(kv => $"{kv.Key}: checkpoint {saved.Extra[kv.Key]?.ToJsonString() ?? "none"}, this run {kv.Value?.ToJsonString() ?? "none"}")
            .ToList();
        if (differences.Count > 0)
            throw new InvalidDataException($"{checkpoint} was written by a different setup ({string.Join("; ", differences)}); " +
                                           "resume with the original settings or start a new run (another --output_dir)");
        var manifest = TrainingCheckpoint.Load(checkpoint, parts);
        if (!LearningRateSchedule.FromJson(manifest.Schedule, checkpoint).SameSettingsAs(schedule))
            warn($"the learning-rate schedule differs from the one {checkpoint} was trained with; continuing with {schedule}");
        log($"resumed from {checkpoint} at step {manifest.Position.GlobalStep} (epoch {manifest.Position.Epoch}, batch {manifest.Position.BatchInEpoch})");
        return manifest.Position;
    }

    static TrainableTransformer LoadModel(TrainingPlan plan, TrainingModelFiles files)
    {
        // LoRA: the whole base is frozen, so it loads straight into the frozen dtype; full: float32 master weights.
        var dtype = plan.Mode == TrainingMode.Lora ? plan.FrozenDtype : ScalarType.Float32;
        var transformer = PixArtTransformer2DModel.FromPretrained(files.TransformerFolder, plan.Device, dtype);
        try { return TrainableTransformer.Prepare(transformer, plan); }
        catch { transformer.Dispose(); throw; }
    }

    static SchedulerConfig SchedulerOf(TrainingModelFiles files) =>
        files.SchedulerFolder is { } folder && File.Exists(Path.Combine(folder, "scheduler_config.json"))
            ? SchedulerConfig.Load(Path.Combine(folder, "scheduler_config.json"))
            : SchedulerConfig.Empty;

    static TrainingObjective CreateObjective(TrainingPlan plan, TrainingModelFiles files, PixArtTransformerConfig config)
    {
        var s = plan.Settings;
        if (plan.Loss == DiffusionLoss.MseVb && config.ResolvedOutChannels != 2 * config.InChannels)
            throw new ArgumentException($"--loss mse+vb trains the learned variance, but this transformer predicts {config.ResolvedOutChannels} " +
                                        $"channels for {config.InChannels} latent channels (no variance output); use --loss mse");
        var scheduler = SchedulerOf(files);
        // PixArt trains on linear betas 1e-4..0.02 over 1000 steps, which is also what its scheduler configs state.
        var noise = ReferenceEquals(scheduler, SchedulerConfig.Empty) ? NoiseSchedule.PixArtDefault() : NoiseSchedule.FromConfig(scheduler);
        return new TrainingObjective(noise, plan.Loss, s.SnrGamma, s.NoiseOffset, scheduler.PredictionType ?? "epsilon");
    }

    static double VaeScalingFactor(TrainingModelFiles files)
    {
        string config = Path.Combine(files.VaeFolder, "config.json");
        if (File.Exists(config) && JsonNode.Parse(File.ReadAllText(config))?["scaling_factor"] is { } f) return f.GetValue<double>();
        return files.Variant?.Vae.ScalingFactor
               ?? throw new InvalidDataException($"{config}: no scaling_factor, and the model is not a registry variant that would give it");
    }

    static Dictionary<string, string> OutputMetadata(TrainingPlan plan, TrainingModelFiles files, TrainingPosition end) => new()
    {
        [PixArtLora.Lora.LoraFile.MetadataBaseModel] = files.Variant?.Id ?? plan.Settings.Model,
        [PixArtLora.Lora.LoraFile.MetadataTraining] = File.ReadAllText(Path.Combine(plan.OutputDir, SettingsFileName)),
        ["training_steps"] = end.GlobalStep.ToString(CultureInfo.InvariantCulture),
    };

    static void WriteSettings(TrainingPlan plan)
    {
        var json = JsonSerializer.SerializeToNode(plan.Settings)!.AsObject();
        json["run_name"] = plan.RunName;
        json["output_dir"] = plan.OutputDir;
        json["cache_dir"] = plan.CacheDir;
        AtomicFile.WriteAllText(Path.Combine(plan.OutputDir, SettingsFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
