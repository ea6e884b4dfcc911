using System.Globalization;
using PixArtLora.Data.Images;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>What <c>lora infer</c> reports while it works; every member has a no-op default.</summary>
public interface IInferenceReporter
{
    /// <summary>A note for the user (what is loaded, sizes, warnings).</summary>
    void Message(string text) { }
    /// <summary>Generation starts: <paramref name="batches"/> batches (one per prompt) of <paramref name="stepsPerBatch"/> steps.</summary>
    void Start(int batches, int stepsPerBatch, int images) { }
    /// <summary>After each sampler step of batch <paramref name="batch"/> (0-based).</summary>
    void Step(int batch, int step, int steps) { }
    /// <summary>A file was written.</summary>
    void Saved(string path) { }
}

/// <summary>The files one <see cref="InferenceRunner.Run"/> wrote.</summary>
public sealed record InferenceRunResult(IReadOnlyList<string> Images, string? ContactSheet, GenerationSize Size, SamplingChoice Sampling);

/// <summary>
/// <c>lora infer</c> as a library call: settings → pipeline → PNG files with their generation parameters, plus a
/// contact sheet when more than one image is made. Every setting is checked before a model is loaded, and every file
/// is written atomically, so a bad input leaves no output behind. Image i of the run (prompt-major) uses seed + i.
/// </summary>
public static class InferenceRunner
{
    /// <summary>Runs <paramref name="settings"/>; <paramref name="fetch"/> overrides how Hub components are downloaded.</summary>
    public static InferenceRunResult Run(InferSettings settings, IInferenceReporter? reporter = null,
        Func<HubComponent, string>? fetch = null, CancellationToken ct = default)
    {
        reporter ??= new SilentReporter();
        var prompts = ReadPrompts(settings);
        if (settings.Sampler is { } sampler) SamplingChoice.Canonical(sampler);
        if (settings.BatchSize < 1) throw new ArgumentException($"batch_size is {settings.BatchSize}; expected at least 1");
        if (settings.NumInferenceSteps is < 1) throw new ArgumentException($"num_inference_steps is {settings.NumInferenceSteps}; expected at least 1");
        if (settings.ImageWidth is <= 0 || settings.ImageHeight is <= 0)
            throw new ArgumentException($"image size {settings.ImageWidth}x{settings.ImageHeight}: width and height must be positive");
        var device = ParseDevice(settings.Device, "device");
        var dtype = ParseDType(settings.Dtype);
        var loras = settings.LoraPath.Select(p => LoraSpec.Parse(p, settings.LoraScale)).ToList();
        var outputs = OutputPlan.For(settings.OutputPath, prompts.Count * settings.BatchSize);

        var options = new PipelineLoadOptions
        {
            Device = device, DType = dtype,
            TextEncoderDevice = settings.TextEncoderDevice is { } ted ? ParseDevice(ted, "text_encoder_device") : null,
            KeepTextEncoder = settings.KeepTextEncoder, ComponentsFrom = settings.ComponentsFrom, Checkpoint = settings.Checkpoint,
            Loras = loras, MaxSequenceLength = settings.MaxSequenceLength, VaeTiling = ParseTiling(settings.VaeTiling),
            Fetch = fetch, Log = reporter.Message,
        };
        using var pipeline = PixArtPipeline.Load(settings.Model, options);
        var size = pipeline.PlanSize(settings.ImageWidth, settings.ImageHeight, settings.UseResolutionBinning);
        var sampling = pipeline.ChooseSampling(settings.Sampler, settings.NumInferenceSteps, settings.GuidanceScale);
        reporter.Message($"{prompts.Count * settings.BatchSize} image(s) at {size}, {sampling.DisplayName} {sampling.Steps} steps, guidance {sampling.GuidanceScale.ToString(CultureInfo.InvariantCulture)}");

        // Every prompt and the negative one in a single T5 session, released before the transformer loads.
        using var features = pipeline.EncodePrompts(prompts.Append(settings.NegativePrompt).ToList());
        using var negative = features.Select(new long[] { prompts.Count });

        reporter.Start(prompts.Count, sampling.Steps, prompts.Count * settings.BatchSize);
        var written = new List<string>();
        var sheetImages = new List<Image<Rgb24>>();
        GenerationParameters? first = null;
        try
        {
            for (int p = 0; p < prompts.Count; p++)
            {
                using var prompt = features.Select(new long[] { p });
                var request = new GenerationRequest
                {
                    Prompts = new[] { prompts[p] }, PromptEmbeddings = prompt, NegativeEmbeddings = negative,
                    ImagesPerPrompt = settings.BatchSize, Width = settings.ImageWidth, Height = settings.ImageHeight,
                    UseResolutionBinning = settings.UseResolutionBinning, Sampler = sampling.Sampler, Steps = sampling.Steps,
                    GuidanceScale = sampling.GuidanceScale,
                    Seeds = Enumerable.Range(0, settings.BatchSize).Select(i => unchecked(settings.Seed + (long)p * settings.BatchSize + i)).ToList(),
                };
                int batch = p;
                using var result = pipeline.Generate(request, progress => reporter.Step(batch, progress.Step, progress.Steps), ct);
                foreach (var item in result.Items)
                {
                    int index = p * settings.BatchSize + item.Index;
                    var parameters = GenerationMetadata.Describe(result, item.Index, settings.Model, settings.NegativePrompt, loras,
                        pipeline.MaxSequenceLength, settings.Checkpoint);
                    first ??= parameters;
                    var image = result.ToImage(item.Index);
                    string path = outputs.ImagePath(index, item.Seed);
                    PngImageFile.Save(image, path, parameters);
                    written.Add(path);
                    reporter.Saved(path);
                    if (outputs.SheetPath is null) image.Dispose(); else sheetImages.Add(image);
                }
            }
            if (outputs.SheetPath is { } sheetPath)
            {
                using var sheet = ContactSheet.Compose(sheetImages);
                PngImageFile.Save(sheet, sheetPath, first);
                reporter.Saved(sheetPath);
            }
            return new InferenceRunResult(written, outputs.SheetPath, size, sampling);
        }
        finally
        {
            foreach (var image in sheetImages) image.Dispose();
        }
    }

    /// <summary>--prompt values, then the lines of --prompt_path (blank lines skipped); an error when there are none.</summary>
    public static IReadOnlyList<string> ReadPrompts(InferSettings settings)
    {
        var prompts = new List<string>(settings.Prompt);
        if (settings.PromptPath is { } file)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"prompt file not found: {file}", file);
            var lines = File.ReadAllLines(file).Where(l => !string.IsNullOrWhiteSpace(l)).ToList();
            if (lines.Count == 0) throw new InvalidDataException($"prompt file {file} holds no prompts (expected one prompt per line)");
            prompts.AddRange(lines);
        }
        if (prompts.Count == 0) throw new ArgumentException("no prompt given: use --prompt \"...\" or --prompt_path <file with one prompt per line>");
        return prompts;
    }

    /// <summary>cpu, cuda or cuda:N.</summary>
    public static Device ParseDevice(string text, string setting)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return CPU;
        if (t == "cuda" || (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t[5..], out _)))
        {
            if (!cuda.is_available())
                throw new ArgumentException($"{setting} {text}: CUDA is not available in this build/machine (build with -p:TorchBackend=cuda on a GPU machine), use cpu");
            return device(t);
        }
        throw new ArgumentException($"{setting} '{text}': expected cpu, cuda or cuda:N");
    }

    /// <summary>fp32 | float32, bf16 | bfloat16, fp16 | float16.</summary>
    public static ScalarType ParseDType(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" or "half" => ScalarType.Float16,
        _ => throw new ArgumentException($"dtype '{text}': expected fp32, bf16 or fp16"),
    };

    /// <summary>auto (tile above ~1280² pixels), on, off.</summary>
    public static VaeTiling ParseTiling(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => VaeTiling.Default,
        "on" or "true" or "always" => VaeTiling.Always(),
        "off" or "false" or "never" => VaeTiling.Off,
        _ => throw new ArgumentException($"vae_tiling '{text}': expected auto, on or off"),
    };

    sealed class SilentReporter : IInferenceReporter;
}
