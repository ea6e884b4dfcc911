using PixArtLora.Diffusion;
using PixArtLora.Inference;
using PixArtLora.Registry;
using static TorchSharp.torch;
using InferenceRequest = PixArtLora.Inference.GenerationRequest;

namespace PixArtLora.Server;

/// <summary>
/// The real backend of <c>lora serve</c>: one loaded <see cref="PixArtPipeline"/> (kept in memory; T5 stays loaded
/// because every request brings new prompts), its LoRAs loaded once and re-scaled per request (0 = off).
/// </summary>
public sealed class PipelineBackend : IGenerationBackend, IDisposable
{
    readonly PixArtPipeline _pipeline;
    readonly IReadOnlyList<string> _loraNames;

    public ModelInfo Info { get; }

    PipelineBackend(PixArtPipeline pipeline, IReadOnlyList<LoraSpec> loras)
    {
        _pipeline = pipeline;
        _loraNames = loras.Select(l => Path.GetFileNameWithoutExtension(l.Path.TrimEnd('/', '\\'))).ToList();
        var defaults = pipeline.Variant?.Sampling ?? new SamplerDefaults("dpm-solver", 20, 4.5);
        // The default sampler first, as the page expects; every sampler the runner knows after it.
        var samplers = new[] { "dpm", "sa-solver", "iddpm", "ddim", "euler", "ddpm" }
            .Select(name => new SamplerInfo(name, defaults.StepsFor(name == "dpm" ? "dpm-solver" : name), defaults.GuidanceScale))
            .ToList();
        var sizes = pipeline.BinningTable ?? pipeline.Variant?.InferenceAspectRatios ?? AspectRatioBins.ForInference(512);
        Info = new ModelInfo(pipeline.ModelName, samplers, sizes,
            loras.Select((l, i) => new LoraInfo(_loraNames[i], l.Scale)).ToList());
    }

    /// <summary>Loads the model (registry id, Hub id or folder) and LoRA paths (each may end with :scale).</summary>
    public static PipelineBackend Load(string model, IReadOnlyList<string> loraPaths, string device, string dtype)
    {
        var loras = loraPaths.Select(p => LoraSpec.Parse(p)).ToList();
        var pipeline = PixArtPipeline.Load(model, new PipelineLoadOptions
        {
            Device = TorchSharp.torch.device(device),
            DType = dtype.ToLowerInvariant() switch
            {
                "fp32" or "float32" => ScalarType.Float32,
                "bf16" or "bfloat16" => ScalarType.BFloat16,
                "fp16" or "float16" => ScalarType.Float16,
                _ => throw new ArgumentException($"--dtype {dtype}: expected fp32, bf16 or fp16"),
            },
            KeepTextEncoder = true,
            Loras = loras,
        });
        return new PipelineBackend(pipeline, loras);
    }

    public Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress> progress, CancellationToken ct)
    {
        // The server never calls concurrently, so the LoRA scales can be set on the shared pipeline.
        var applied = new List<LoraSpec>();
        for (int i = 0; i < _loraNames.Count; i++)
        {
            var use = request.Loras.FirstOrDefault(l => l.Name == _loraNames[i]);
            double scale = use?.Scale ?? 0;
            _pipeline.SetLoraScale(i, scale);
            if (scale != 0) applied.Add(new LoraSpec(_pipeline.Loras[i].Path, scale));
        }
        using var result = _pipeline.Generate(new InferenceRequest
        {
            Prompts = new[] { request.Prompt },
            NegativePrompt = request.NegativePrompt,
            ImagesPerPrompt = request.ImageCount,
            Width = request.Width,
            Height = request.Height,
            Sampler = request.Sampler,
            Steps = request.Steps,
            GuidanceScale = request.GuidanceScale,
            Seed = request.Seed,
        }, step => progress.Report(new GenerationProgress(step.Step, step.Steps)), ct);
        var images = new List<GeneratedImage>();
        for (int i = 0; i < result.Count; i++)
        {
            var parameters = GenerationMetadata.Describe(result, i, _pipeline.ModelName, request.NegativePrompt, applied, _pipeline.MaxSequenceLength);
            images.Add(new GeneratedImage(GenerationMetadata.EncodePng(result, i, parameters), result.Size.Width, result.Size.Height,
                result.Items[i].Seed, parameters.ToInfotext()));
        }
        return Task.FromResult<IReadOnlyList<GeneratedImage>>(images);
    }

    public void Dispose() => _pipeline.Dispose();
}
