using System.Diagnostics;
using PixArtLora.Inference;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>What the end-to-end benchmark generates: a real model (<see cref="ModelId"/>) or a variant with random weights.</summary>
public sealed record EndToEndBenchOptions
{
    /// <summary>The variant built with random weights when <see cref="ModelId"/> is null.</summary>
    public required ModelVariant Variant { get; init; }
    /// <summary>A registry id, local pipeline folder or Hub id loaded with <see cref="PixArtPipeline.Load"/>; null: random weights.</summary>
    public string? ModelId { get; init; }
    /// <summary>Square image side in pixels; null: the model's base size.</summary>
    public int? Resolution { get; init; }
    /// <summary>Transformer and VAE dtype.</summary>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;
    /// <summary>T5's dtype. bf16 by default: T5-XXL is 9.5 GB there, 19 GB in fp32, and about 4× faster on CPU.</summary>
    public ScalarType TextEncoderDtype { get; init; } = ScalarType.BFloat16;
    /// <summary>Sampler steps per image; null: the model's default (DPM-Solver++ 20).</summary>
    public int? InferSteps { get; init; }
    /// <summary>Timed images, each way (median and minimum reported).</summary>
    public int Steps { get; init; } = 3;
    /// <summary>Untimed images first.</summary>
    public int Warmup { get; init; } = 1;
    public Device Device { get; init; } = CPU;
    /// <summary>Seed of the random weights and of the initial noise.</summary>
    public long Seed { get; init; }
    /// <summary>Attention kernel for the run (process-wide <see cref="ChunkedAttention.Kernel"/>).</summary>
    public AttentionKernel Attention { get; init; } = AttentionKernel.Auto;
    /// <summary>Where the tiny model is generated for <c>ModelId = "tiny"</c> (default <see cref="TinyModels.DefaultModelsRoot"/>).</summary>
    public string? TinyModelsRoot { get; init; }

    /// <summary>Throws on a value that cannot run, naming the option.</summary>
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"--steps {Steps}: expected >= 1");
        if (Warmup < 0) throw new ArgumentException($"--warmup {Warmup}: expected >= 0");
        if (InferSteps is < 1) throw new ArgumentException($"--infer_steps {InferSteps}: expected >= 1");
        foreach (var (name, dtype) in new[] { ("--dtype", Dtype), ("--text_encoder_dtype", TextEncoderDtype) })
            if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
                throw new ArgumentException($"{name} {dtype}: expected fp32, bf16 or fp16");
    }
}

/// <summary>
/// Runs <see cref="EndToEndBenchOptions"/>: builds or loads the pipeline, encodes once, then times whole images
/// (<see cref="EndToEndBenchmark.Measure"/>) and reports them with the phases and the peak memory.
/// </summary>
public static class EndToEndRun
{
    public static EndToEndBenchResult Run(EndToEndBenchOptions options, Action<string>? log = null)
    {
        options.Validate();
        var previousKernel = ChunkedAttention.Kernel;
        ChunkedAttention.Kernel = options.Attention;
        try { return Measure(options, log); }
        finally { ChunkedAttention.Kernel = previousKernel; }
    }

    /// <summary>The pipeline a run measures: <see cref="PixArtPipeline.Load"/> of the model id, else <see cref="RandomPipeline.Build"/>.</summary>
    public static PixArtPipeline Open(EndToEndBenchOptions options, Action<string>? log = null)
    {
        if (options.ModelId is { } id)
            return PixArtPipeline.Load(id, new PipelineLoadOptions
            {
                Device = options.Device, DType = options.Dtype, TextEncoderDType = options.TextEncoderDtype,
                KeepTextEncoder = true, TinyModelsRoot = options.TinyModelsRoot, Log = log,
            });
        return RandomPipeline.Build(options.Variant, options.Dtype, options.TextEncoderDtype, options.Device, options.Seed);
    }

    static EndToEndBenchResult Measure(EndToEndBenchOptions options, Action<string>? log)
    {
        var device = options.Device;
        var machineBefore = MachineInfo.Read(device);
        ProcessMemory.Settle();
        bool peakReset = ProcessMemory.ResetPeak();
        long rssBefore = ProcessMemory.ResidentBytes();
        using var deviceWatch = DeviceMemoryWatch.Start(device);

        string what = options.ModelId ?? $"{options.Variant.Id} with random weights";
        log?.Invoke($"{(options.ModelId is null ? "building" : "loading")} {what} (transformer/VAE {DtypeNames.Short(options.Dtype)}, T5 {DtypeNames.Short(options.TextEncoderDtype)}) on {device}");
        long setupStart = Stopwatch.GetTimestamp();
        using var pipeline = Open(options, log);
        // Everything loads now rather than inside the first image: transformer, VAE, and T5 with a first encode.
        _ = pipeline.Transformer;
        _ = pipeline.Vae;
        var generator = new PipelineGenerator(pipeline, options.Resolution ?? pipeline.DefaultImageSize, options.InferSteps, seed: options.Seed);
        (generator.EncodePrompt() as IDisposable)?.Dispose();
        double setupSeconds = Stopwatch.GetElapsedTime(setupStart).TotalSeconds;

        using var probe = empty(new long[] { 1, 1, 1, 1 }, dtype: options.Dtype, device: device);
        string attentionKernel = ChunkedAttention.Selected(probe) ? "chunked" : "sdpa";
        var sampling = generator.Sampling;
        log?.Invoke($"ready in {setupSeconds:F1} s; {options.Warmup} warm-up + {options.Steps} timed images at {generator.Resolution} px, " +
                    $"{sampling.Steps} {sampling.Sampler} steps, guidance {sampling.GuidanceScale}, each followed by one with T5");
        var timing = EndToEndBenchmark.Measure(generator, options.Warmup, options.Steps);
        long peak = ProcessMemory.PeakResidentBytes();
        var deviceMemory = deviceWatch?.Stop();
        var machineAfter = MachineInfo.Read(device);

        return new EndToEndBenchResult
        {
            Variant = pipeline.Variant?.Id ?? pipeline.ModelName,
            Model = options.ModelId ?? "random weights",
            RandomWeights = options.ModelId is null,
            Resolution = generator.Resolution,
            Dtype = DtypeNames.Short(options.Dtype),
            TextEncoderDtype = DtypeNames.Short(options.TextEncoderDtype),
            Sampler = sampling.Sampler,
            InferSteps = sampling.Steps,
            GuidanceScale = sampling.GuidanceScale,
            TransformerBatch = sampling.UsesGuidance ? 2 : 1,
            CaptionTokens = pipeline.MaxSequenceLength,
            Steps = options.Steps,
            Warmup = options.Warmup,
            SetupSeconds = setupSeconds,
            SecondsPerImage = timing.WithoutTextEncoder.Seconds,
            SecondsPerImageMedian = timing.WithoutTextEncoder.Median,
            SecondsPerImageMin = timing.WithoutTextEncoder.Min,
            CpuSecondsPerImageMedian = timing.WithoutTextEncoder.CpuMedian,
            SecondsPerImageWithTextEncoder = timing.WithTextEncoder.Seconds,
            SecondsPerImageWithTextEncoderMedian = timing.WithTextEncoder.Median,
            SecondsPerImageWithTextEncoderMin = timing.WithTextEncoder.Min,
            TextEncoderSeconds = timing.TextEncoderSeconds,
            TextEncoderSecondsMedian = TimingStats.MedianOf(timing.TextEncoderSeconds),
            TransformerSecondsPerSamplerStepMedian = TimingStats.MedianOf(timing.Phases.Select(p => p.SecondsPerSamplerStep).ToList()),
            TransformerSecondsPerSamplerStepWithTextEncoderMedian = TimingStats.MedianOf(timing.PhasesWithTextEncoder.Select(p => p.SecondsPerSamplerStep).ToList()),
            VaeDecodeSecondsMedian = TimingStats.MedianOf(timing.Phases.Select(p => p.DecodeSeconds).ToList()),
            ImagesPerSecond = 1 / timing.WithoutTextEncoder.Median,
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
