using System.Diagnostics;
using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>What to measure: a variant's transformer (random weights) at a resolution, dtype and mode.</summary>
public sealed record TransformerBenchOptions
{
    public required ModelVariant Variant { get; init; }
    /// <summary>Square image size in pixels; the latent is a eighth of it. Null: the variant's base size.</summary>
    public int? Resolution { get; init; }
    /// <summary>Parameter (and compute) dtype of the transformer; latents and captions enter in float32 and are cast.</summary>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;
    public BenchMode Mode { get; init; } = BenchMode.Forward;
    public bool GradientCheckpointing { get; init; }
    /// <summary>Timed steps; the median and minimum are reported.</summary>
    public int Steps { get; init; } = 3;
    /// <summary>Untimed steps first (allocator and kernel warm-up).</summary>
    public int Warmup { get; init; } = 1;
    /// <summary>Latents per step. Inference with classifier-free guidance runs a batch of 2 per image.</summary>
    public int BatchSize { get; init; } = 1;
    /// <summary>Caption length; null: the variant's (Σ 300, α 120).</summary>
    public int? CaptionTokens { get; init; }
    public int LoraRank { get; init; } = 16;
    public Device Device { get; init; } = CPU;
    /// <summary>Side of the square matrices of the GEMM throughput probe.</summary>
    public int GemmSize { get; init; } = 2048;
    public long Seed { get; init; } = 0;
    /// <summary>Attention kernel for the run (process-wide <see cref="ChunkedAttention.Kernel"/>).</summary>
    public AttentionKernel Attention { get; init; } = AttentionKernel.Auto;

    public int ResolvedResolution => Resolution ?? Variant.ImageSize;
    public int ResolvedCaptionTokens => CaptionTokens ?? Variant.CaptionTokens;

    /// <summary>Throws on a combination that cannot run, naming the option.</summary>
    public void Validate()
    {
        int multiple = 8 * Variant.TransformerConfig.PatchSize;
        if (ResolvedResolution <= 0 || ResolvedResolution % multiple != 0)
            throw new ArgumentException($"--resolution {ResolvedResolution}: expected a positive multiple of {multiple} (VAE factor 8 × patch size {Variant.TransformerConfig.PatchSize})");
        if (Steps < 1) throw new ArgumentException($"--steps {Steps}: expected >= 1");
        if (Warmup < 0) throw new ArgumentException($"--warmup {Warmup}: expected >= 0");
        if (BatchSize < 1) throw new ArgumentException($"--batch_size {BatchSize}: expected >= 1");
        if (ResolvedCaptionTokens < 1) throw new ArgumentException($"caption tokens {ResolvedCaptionTokens}: expected >= 1");
        if (LoraRank < 1) throw new ArgumentException($"--lora_rank {LoraRank}: expected >= 1");
        if (Dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"--dtype {Dtype}: expected fp32, bf16 or fp16");
        if (GradientCheckpointing && Mode == BenchMode.Forward)
            throw new ArgumentException("--gradient_checkpointing applies to --mode lora or full (forward keeps no activations)");
    }
}

/// <summary>Runs <see cref="TransformerBenchOptions"/>: GEMM probe, model build, warm-up, timed steps, peak memory.</summary>
public static class TransformerBenchmark
{
    /// <summary>
    /// Measures one configuration. The peak RSS covers the model, its inputs and the steps (the GEMM probe runs
    /// before and its peak is reset away); on CPU it includes the process's own baseline (runtime, libtorch).
    /// </summary>
    public static TransformerBenchResult Run(TransformerBenchOptions options, Action<string>? log = null)
    {
        options.Validate();
        var previousKernel = ChunkedAttention.Kernel;
        ChunkedAttention.Kernel = options.Attention;
        try { return Measure(options, log); }
        finally { ChunkedAttention.Kernel = previousKernel; }
    }

    /// <summary>The name of the adapter <see cref="AttachAdapters"/> adds.</summary>
    public const string AdapterName = "bench";

    /// <summary>
    /// Attaches the library's LoRA adapters as <c>lora train</c> does: rank <paramref name="rank"/>, alpha = rank, on
    /// <see cref="TransformerFlops.AdapterTargets"/> of every attention, A and B in float32 whatever the base dtype
    /// (the trainer's <c>--mixed_precision bf16</c> keeps a bf16 base and fp32 adapters), A drawn from PEFT's
    /// "gaussian" as the reference LoRA scripts do. Every other parameter is frozen.
    /// </summary>
    public static LoraNetwork AttachAdapters(PixArtTransformer2DModel model, int rank, Device device, long seed = 0)
    {
        var network = LoraNetwork.Attach(model);
        try
        {
            var config = new LoraConfig
            {
                Rank = rank, Alpha = rank, Targets = new LoraTargets(TransformerFlops.AdapterTargets), Init = LoraInit.Gaussian, Seed = seed,
            };
            network.AddAdapter(AdapterName, config, device, ScalarType.Float32);
            return network;
        }
        catch { network.Dispose(); throw; }
    }

    static TransformerBenchResult Measure(TransformerBenchOptions options, Action<string>? log)
    {
        var device = options.Device;
        var machineBefore = MachineInfo.Read(device);
        log?.Invoke($"GEMM probe: {options.GemmSize}² {DtypeNames.Short(options.Dtype)} on {device}");
        var gemm = GemmThroughput.Measure(options.Dtype, device, options.GemmSize);

        ProcessMemory.Settle();
        bool peakReset = ProcessMemory.ResetPeak();
        long rssBefore = ProcessMemory.ResidentBytes();
        using var deviceWatch = DeviceMemoryWatch.Start(device);

        var config = options.Variant.TransformerConfig;
        log?.Invoke($"building {options.Variant.Id} ({DtypeNames.Short(options.Dtype)}, random weights)");
        using var model = RandomPipeline.RandomTransformer(config, device, options.Dtype, options.Seed);
        using LoraNetwork? lora = options.Mode == BenchMode.Lora ? AttachAdapters(model, options.LoraRank, device, options.Seed) : null;
        long adapterParameters = lora?.TrainableParameters().Sum(p => p.numel()) ?? 0;
        switch (options.Mode)
        {
            case BenchMode.Forward:
                model.eval();
                foreach (var p in model.parameters()) p.requires_grad = false;
                break;
            case BenchMode.Lora:
                model.train();
                break;
            case BenchMode.Full:
                model.train();
                break;
        }
        model.GradientCheckpointing = options.GradientCheckpointing;
        long parameters = model.parameters().Sum(p => p.numel());
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        long weightBytes = model.parameters().Sum(p => p.numel() * p.element_size());

        long batch = options.BatchSize, latent = options.ResolvedResolution / 8, tokens = options.ResolvedCaptionTokens;
        using var inputs = BenchInputs.Create(config, batch, latent, latent, tokens, device, options.Seed);
        using var probe = empty(new long[] { 1, 1, 1, 1 }, dtype: options.Dtype, device: device);
        string attentionKernel = ChunkedAttention.Selected(probe) ? "chunked" : "sdpa";

        var forwardSeconds = new List<double>();
        void Step()
        {
            using var scope = NewDisposeScope();
            long start = Stopwatch.GetTimestamp();
            if (options.Mode == BenchMode.Forward)
            {
                using var noGrad = no_grad();
                inputs.Run(model);
            }
            else
            {
                var loss = inputs.Run(model).square().mean();
                forwardSeconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                loss.backward();
                model.zero_grad(set_to_none: true);
            }
            if (device.type == DeviceType.CUDA) cuda.synchronize(device);
        }

        log?.Invoke($"{options.Warmup} warm-up + {options.Steps} timed {options.Mode.ToString().ToLowerInvariant()} steps at {options.ResolvedResolution} px, batch {batch}");
        // The machine's speed drifts (a shared VM: the same probe gave 360–730 GFLOP/s within an hour), so a short
        // probe after every timed step gives each step its own denominator as well.
        var probesBetween = new double[options.Steps];
        var timing = StepTimer.Measure(Step, options.Warmup, options.Steps,
            afterEach: i => probesBetween[i] = GemmThroughput.Measure(options.Dtype, device, options.GemmSize, warmup: 1, repeats: 3).FlopsPerSecond);
        long peak = ProcessMemory.PeakResidentBytes();
        var deviceMemory = deviceWatch?.Stop();

        var flops = TransformerFlops.Count(config, batch, latent, latent, tokens, options.Mode, options.GradientCheckpointing, options.LoraRank);
        var machineAfter = MachineInfo.Read(device);
        return new TransformerBenchResult
        {
            Variant = options.Variant.Id,
            Resolution = options.ResolvedResolution,
            Dtype = DtypeNames.Short(options.Dtype),
            Mode = options.Mode.ToString().ToLowerInvariant(),
            GradientCheckpointing = options.GradientCheckpointing,
            BatchSize = options.BatchSize,
            Steps = options.Steps,
            Warmup = options.Warmup,
            ImageTokens = (latent / config.PatchSize) * (latent / config.PatchSize),
            CaptionTokens = tokens,
            LoraRank = options.Mode == BenchMode.Lora ? options.LoraRank : null,
            Parameters = parameters,
            TrainableParameters = trainable,
            AdapterParameters = options.Mode == BenchMode.Lora ? adapterParameters : null,
            WeightBytes = weightBytes,
            SecondsPerStep = timing.Seconds,
            SecondsPerStepMedian = timing.Median,
            SecondsPerStepMin = timing.Min,
            CpuSecondsPerStepMedian = timing.CpuMedian,
            ForwardSecondsMedian = forwardSeconds.Count > options.Warmup ? TimingStats.MedianOf(forwardSeconds.Skip(options.Warmup).ToList()) : null,
            PageFaultsPerStep = timing.MinorPageFaults / options.Steps,
            ImagesPerSecond = batch / timing.Median,
            ModelFlopsPerStep = flops.Total,
            Flops = flops,
            AchievedFlopsPerSecond = flops.Total / timing.Median,
            GemmSize = gemm.Size,
            GemmFlopsPerSecond = gemm.FlopsPerSecond,
            GemmMedianFlopsPerSecond = gemm.MedianFlopsPerSecond,
            Mfu = flops.Total / timing.Median / gemm.FlopsPerSecond,
            GemmFlopsPerSecondAfterSteps = probesBetween,
            MfuStepMatched = TimingStats.MedianOf(timing.Seconds.Select((seconds, i) => flops.Total / seconds / probesBetween[i]).ToList()),
            PeakRssBytes = peak,
            RssBeforeModelBytes = rssBefore,
            PeakRssIsProcessWide = !peakReset,
            CudaMemory = deviceMemory,
            AttentionKernel = attentionKernel,
            AllocatorTuned = CpuAllocatorTuning.Applied,
            Device = machineBefore.Device,
            LoadAverage1mStart = machineBefore.LoadAverage1m,
            LoadAverage1mEnd = machineAfter.LoadAverage1m,
            TorchVersion = __version__,
            Timestamp = DateTimeOffset.UtcNow,
        };
    }
}

/// <summary>Short dtype names used on the command line and in reports.</summary>
public static class DtypeNames
{
    public static string Short(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        _ => dtype.ToString().ToLowerInvariant(),
    };

    /// <summary>Parses fp32 / float32, bf16 / bfloat16, fp16 / float16.</summary>
    public static ScalarType Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" or "half" => ScalarType.Float16,
        _ => throw new ArgumentException($"dtype '{name}': expected fp32, bf16 or fp16"),
    };
}
