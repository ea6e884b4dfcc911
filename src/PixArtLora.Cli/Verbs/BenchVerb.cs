using System.CommandLine;
using System.Globalization;
using PixArtLora.Benchmarks;
using PixArtLora.IO;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Runtime;
using Spectre.Console;
using static TorchSharp.torch;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora bench</c>: seconds per step, FLOP utilisation and peak memory of the transformer at a variant, resolution,
/// dtype and mode (random weights, nothing downloaded); or with <c>--load</c>, the time and memory to load a
/// checkpoint against simply reading it; or with <c>--end_to_end</c>, seconds per image through the whole pipeline.
/// Prints a table and writes JSON with <c>--json</c>.
/// </summary>
public static class BenchVerb
{
    public static Command Create()
    {
        var variant = CliOptions.Create<string>("--variant", "Registry variant whose transformer is measured (see `lora models`)", "sigma-512-ms");
        var resolution = CliOptions.Create<int?>("--resolution", "Square image size in pixels (default: the variant's size)");
        var dtype = CliOptions.Create<string>("--dtype", "Transformer dtype: fp32 or bf16", "fp32");
        var mode = CliOptions.Create<string>("--mode", "forward (inference, no autograd) | lora (rank-r adapters on the attention projections, base frozen) | full (every parameter trainable); lora and full run forward+backward", "forward");
        var checkpointing = CliOptions.Create<bool>("--gradient_checkpointing", "Recompute each block's activations in backward (lora/full)");
        var steps = CliOptions.Create<int>("--steps", "Timed steps (median and min reported); with --load, timed loads", 3);
        var warmup = CliOptions.Create<int>("--warmup", "Untimed steps before timing", 1);
        var batch = CliOptions.Create<int>("--batch_size", "Latents per step (2 = one image with classifier-free guidance)", 1);
        var rank = CliOptions.Create<int>("--lora_rank", "Adapter rank for --mode lora", 16);
        var captionTokens = CliOptions.Create<int?>("--caption_tokens", "Caption length (default: the variant's, Σ 300, α 120)");
        var gemmSize = CliOptions.Create<int>("--gemm_size", "Side of the square matmul that measures this machine's GEMM throughput", 2048);
        var device = CliOptions.Create<string>("--device", "cpu or cuda[:i]", "cpu");
        var seed = CliOptions.Create<long>("--seed", "Seed of the random weights and inputs", 0L);
        var json = CliOptions.Create<string?>("--json", "Write the measurements to this JSON file");
        var load = CliOptions.Create<string?>("--load", "Measure loading this transformer (transformer or pipeline folder) instead of steps");
        var loadDtypes = CliOptions.Create<string>("--load_dtypes", "Model dtypes to load into, comma-separated", "fp32,bf16");
        var makeCheckpoint = CliOptions.Create<string?>("--make_checkpoint",
            "Write random-weight fp32 and bf16 checkpoints of --variant into this folder, then measure loading them (unless --load is given)");
        var makePipeline = CliOptions.Create<string?>("--make_pipeline",
            "Write a whole pipeline folder of --variant with random weights (real-size transformer and VAE, a one-layer stand-in for T5-XXL with its output width) for measuring `lora train` / `lora infer` at full size offline, then stop");
        var attention = CliOptions.Create<string>("--attention", "Attention kernel: auto (chunked GEMMs for bf16 on CPU, else SDPA), sdpa or chunked", "auto");
        var allocator = CliOptions.Create<string>("--allocator", "Native heap: tuned (huge pages, no per-step unmapping) or default (glibc as is)", "tuned");
        var endToEnd = CliOptions.Create<bool>("--end_to_end",
            "Seconds per image through the whole pipeline (T5, sampler with guidance, VAE decode), without and with the prompt encode: " +
            "--variant with random weights built in memory, or the model of --model_id; --steps/--warmup count images");
        var modelId = CliOptions.Create<string?>("--model_id", "With --end_to_end: registry id, local pipeline folder or Hub id to load instead of random weights (e.g. tiny)");
        var inferSteps = CliOptions.Create<int?>("--infer_steps", "With --end_to_end: sampler steps per image (default: the model's, DPM-Solver++ 20)");
        var textEncoderDtype = CliOptions.Create<string>("--text_encoder_dtype", "With --end_to_end: T5 dtype (T5-XXL is 9.5 GB in bf16, 19 GB in fp32)", "bf16");

        var command = new Command("bench", "Measure transformer speed (s/step, MFU), peak memory, checkpoint loading, or end-to-end seconds per image on this machine")
        {
            variant, resolution, dtype, mode, checkpointing, steps, warmup, batch, rank, captionTokens, gemmSize, device, seed, json,
            load, loadDtypes, makeCheckpoint, makePipeline, attention, allocator, endToEnd, modelId, inferSteps, textEncoderDtype,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            // Before the first tensor: libtorch reads the huge-page switch once, at its first allocation.
            switch (parse.GetValue(allocator)!.Trim().ToLowerInvariant())
            {
                case "tuned": CpuAllocatorTuning.Apply(); break;
                case "default": break;
                default: throw new ArgumentException($"--allocator '{parse.GetValue(allocator)}': expected tuned or default");
            }
            void Log(string line) => Console.Error.WriteLine($"[bench] {line}");
            var model = ModelRegistry.Get(parse.GetValue(variant)!);
            string? jsonPath = parse.GetValue(json);

            var attentionKernel = ParseAttention(parse.GetValue(attention)!);

            if (parse.GetValue(endToEnd))
            {
                var e2e = EndToEndRun.Run(new EndToEndBenchOptions
                {
                    Variant = model,
                    ModelId = parse.GetValue(modelId),
                    Resolution = parse.GetValue(resolution),
                    Dtype = DtypeNames.Parse(parse.GetValue(dtype)!),
                    TextEncoderDtype = DtypeNames.Parse(parse.GetValue(textEncoderDtype)!),
                    InferSteps = parse.GetValue(inferSteps),
                    Steps = parse.GetValue(steps),
                    Warmup = parse.GetValue(warmup),
                    Device = new Device(parse.GetValue(device)!),
                    Seed = parse.GetValue(seed),
                    Attention = attentionKernel,
                }, Log);
                WriteEndToEndTable(output, e2e);
                if (jsonPath != null) AtomicFile.WriteAllText(jsonPath, e2e.ToJson());
                return 0;
            }
            if (parse.GetValue(modelId) is not null)
                throw new ArgumentException("--model_id applies to --end_to_end (the step benchmark always uses random weights of --variant)");

            if (parse.GetValue(makePipeline) is { } pipelineFolder)
            {
                RandomPipelineFolder.Write(pipelineFolder, model, Log);
                output.WriteLine($"wrote {pipelineFolder} ({model.Id}, random weights); e.g. lora train --model {pipelineFolder} " +
                                 $"--max_token_length {model.CaptionTokens} --dataset <parquet or folder> --mixed_precision bf16");
                return 0;
            }

            string? loadPath = parse.GetValue(load);
            if (parse.GetValue(makeCheckpoint) is { } folder)
            {
                var made = LoadBenchmark.MakeCheckpoints(folder, model, new[] { ScalarType.Float32, ScalarType.BFloat16 }, parse.GetValue(seed), Log);
                output.WriteLine($"wrote {string.Join(", ", made)}");
                if (loadPath is null)
                {
                    var results = made.Select(m => LoadBenchmark.Run(m, ParseDtypes(parse.GetValue(loadDtypes)!), parse.GetValue(steps), Log)).ToList();
                    foreach (var r in results) WriteLoadTable(output, r);
                    if (jsonPath != null) AtomicFile.WriteAllText(jsonPath, "[\n" + string.Join(",\n", results.Select(r => r.ToJson())) + "\n]\n");
                    return 0;
                }
            }
            if (loadPath is not null)
            {
                var result = LoadBenchmark.Run(loadPath, ParseDtypes(parse.GetValue(loadDtypes)!), parse.GetValue(steps), Log);
                WriteLoadTable(output, result);
                if (jsonPath != null) AtomicFile.WriteAllText(jsonPath, result.ToJson());
                return 0;
            }

            var options = new TransformerBenchOptions
            {
                Variant = model,
                Resolution = parse.GetValue(resolution),
                Dtype = DtypeNames.Parse(parse.GetValue(dtype)!),
                Mode = ParseMode(parse.GetValue(mode)!),
                GradientCheckpointing = parse.GetValue(checkpointing),
                Steps = parse.GetValue(steps),
                Warmup = parse.GetValue(warmup),
                BatchSize = parse.GetValue(batch),
                LoraRank = parse.GetValue(rank),
                CaptionTokens = parse.GetValue(captionTokens),
                GemmSize = parse.GetValue(gemmSize),
                Device = new Device(parse.GetValue(device)!),
                Seed = parse.GetValue(seed),
                Attention = attentionKernel,
            };
            var bench = TransformerBenchmark.Run(options, Log);
            WriteStepTable(output, bench);
            if (jsonPath != null) AtomicFile.WriteAllText(jsonPath, bench.ToJson());
            return 0;
        });
        return command;
    }

    static BenchMode ParseMode(string text) => text.Trim().ToLowerInvariant() switch
    {
        "forward" or "inference" => BenchMode.Forward,
        "lora" => BenchMode.Lora,
        "full" => BenchMode.Full,
        _ => throw new ArgumentException($"--mode '{text}': expected forward, lora or full"),
    };

    static AttentionKernel ParseAttention(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => AttentionKernel.Auto,
        "sdpa" => AttentionKernel.Sdpa,
        "chunked" => AttentionKernel.Chunked,
        var other => throw new ArgumentException($"--attention '{other}': expected auto, sdpa or chunked"),
    };

    static IReadOnlyList<ScalarType> ParseDtypes(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(DtypeNames.Parse).ToList();

    static string F(double value, string format = "F3") => value.ToString(format, CultureInfo.InvariantCulture);
    static string Gb(long bytes) => F(bytes / 1e9, "F2") + " GB";
    static string Tflops(double flops) => F(flops / 1e12, "F3") + " TFLOP";

    static IAnsiConsole ConsoleFor(TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        if (output != Console.Out || Console.IsOutputRedirected) console.Profile.Width = 160;
        return console;
    }

    static void WriteStepTable(TextWriter output, TransformerBenchResult r)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape($"{r.Variant} {r.Resolution}px {r.Dtype} {r.Mode}{(r.GradientCheckpointing ? " +ckpt" : "")} bs{r.BatchSize}")}[/]");
        table.AddColumn("[bold]measure[/]").AddColumn(new TableColumn("[bold]value[/]").RightAligned());
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("s/step median (min)", $"{F(r.SecondsPerStepMedian)} ({F(r.SecondsPerStepMin)})");
        Row("CPU s/step median", F(r.CpuSecondsPerStepMedian));
        if (r.ForwardSecondsMedian is double fwd) Row("forward part median", F(fwd));
        Row("page faults/step", r.PageFaultsPerStep.ToString("N0", CultureInfo.InvariantCulture));
        Row("images/s", F(r.ImagesPerSecond, "F4"));
        Row("model FLOPs/step", Tflops(r.ModelFlopsPerStep));
        Row("achieved", F(r.AchievedFlopsPerSecond / 1e9, "F1") + " GFLOP/s");
        Row($"GEMM {r.GemmSize}² {r.Dtype}", F(r.GemmFlopsPerSecond / 1e9, "F1") + " GFLOP/s");
        Row("MFU", F(r.Mfu, "F2"));
        Row("GEMM after each step", string.Join(", ", r.GemmFlopsPerSecondAfterSteps.Select(f => F(f / 1e9, "F0"))) + " GFLOP/s");
        Row("MFU, step-matched median", F(r.MfuStepMatched, "F2"));
        Row("peak RSS", Gb(r.PeakRssBytes) + $" (weights {Gb(r.WeightBytes)})");
        if (CudaMemory(r) is string cudaStep) Row("peak CUDA memory in use (NVML, whole device)", cudaStep);
        Row("parameters (trainable)", $"{r.Parameters:N0} ({r.TrainableParameters:N0})");
        Row("attention kernel, allocator", $"{r.AttentionKernel}, {(r.AllocatorTuned ? "tuned" : "default")}");
        Row("device", r.Device);
        Row("load average 1m (start → end)", $"{r.LoadAverage1mStart?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"} → {r.LoadAverage1mEnd?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"}");
        ConsoleFor(output).Write(table);
    }

    /// <summary>"peak (before models; of total)" for CUDA runs, null on CPU.</summary>
    static string? CudaMemory(BenchRunRecord r) => r.CudaMemory is { } m
        ? $"{Gb(m.PeakUsedBytes)} (before models {Gb(m.UsedBeforeBytes)}; of {Gb(m.TotalBytes)})"
        : null;

    static void WriteEndToEndTable(TextWriter output, EndToEndBenchResult r)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape($"end to end: {r.Variant} ({r.Model}) {r.Resolution}px {r.Dtype}, T5 {r.TextEncoderDtype}, {r.InferSteps} {r.Sampler} steps")}[/]");
        table.AddColumn("[bold]measure[/]").AddColumn(new TableColumn("[bold]value[/]").RightAligned());
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("s/image without T5, median (min)", $"{F(r.SecondsPerImageMedian)} ({F(r.SecondsPerImageMin)})");
        Row("s/image with T5, median (min)", $"{F(r.SecondsPerImageWithTextEncoderMedian)} ({F(r.SecondsPerImageWithTextEncoderMin)})");
        Row("T5 encode median", F(r.TextEncoderSecondsMedian));
        Row($"transformer s/sampler step (batch {r.TransformerBatch}), without / with T5", $"{F(r.TransformerSecondsPerSamplerStepMedian)} / {F(r.TransformerSecondsPerSamplerStepWithTextEncoderMedian)}");
        Row("VAE decode median", F(r.VaeDecodeSecondsMedian));
        Row("CPU s/image median", F(r.CpuSecondsPerImageMedian));
        Row("setup (build or load, first encode)", F(r.SetupSeconds, "F1") + " s");
        Row("peak RSS", Gb(r.PeakRssBytes) + $" (before models {Gb(r.RssBeforeModelBytes)})");
        if (CudaMemory(r) is string cudaImage) Row("peak CUDA memory in use (NVML, whole device)", cudaImage);
        Row("caption tokens, guidance", $"{r.CaptionTokens}, {F(r.GuidanceScale, "G")}");
        Row("attention kernel, allocator", $"{r.AttentionKernel}, {(r.AllocatorTuned ? "tuned" : "default")}");
        Row("device", r.Device);
        Row("load average 1m (start → end)", $"{r.LoadAverage1mStart?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"} → {r.LoadAverage1mEnd?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"}");
        ConsoleFor(output).Write(table);
    }

    static void WriteLoadTable(TextWriter output, LoadBenchResult r)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape($"load {r.Path} ({r.StoredDtype}, {Gb(r.FileBytes)})")}[/]");
        foreach (var h in new[] { "into", "load s (min)", "÷ raw read", "÷ stream read", "random init + load s", "peak RSS", "÷ weights", "increase ÷ weights" })
            table.AddColumn(new TableColumn($"[bold]{h}[/]").RightAligned());
        foreach (var l in r.Loads)
            table.AddRow(l.Dtype, $"{F(l.SecondsMedian)} ({F(l.SecondsMin)})", F(l.OverRawRead, "F2"), F(l.OverStreamingRead, "F2"), F(l.RandomInitThenLoadSeconds),
                Gb(l.PeakRssBytes), F(l.PeakRssOverWeights, "F2"), F(l.PeakRssIncreaseOverWeights, "F2"));
        var console = ConsoleFor(output);
        console.Write(table);
        console.MarkupLine(Markup.Escape($"raw read into a fresh buffer {F(r.RawReadSecondsMedian)} s, streamed {F(r.StreamingReadSecondsMedian)} s (page cache); {r.Device}; load average {r.LoadAverage1mStart?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"}"));
    }
}
