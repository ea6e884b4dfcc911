using PixArtLora.Registry;

namespace PixArtLora.Server;

/// <summary>
/// What the web demo needs from an image generator: a description of the loaded model and one call that turns a
/// validated request into PNG images. The model is loaded before the server starts and stays in memory.
/// </summary>
/// <remarks>
/// Contract, as the server relies on it:
/// <list type="bullet">
/// <item><see cref="GenerateAsync"/> is never called concurrently (one job at a time per model; the server queues the rest),
/// and it is called from a thread-pool thread, so it may block while it computes.</item>
/// <item>Every request has already been checked against <see cref="Info"/> (sampler known, size one of the bins, LoRAs
/// known) and against the server's limits; every field is set (defaults filled in).</item>
/// <item>Image <c>i</c> of a request uses seed <c>request.Seed + i</c>, as <c>lora infer</c> does.</item>
/// <item>Progress may be reported from any thread; the server shows the latest report.</item>
/// <item>Cancellation: observe the token between steps and throw <see cref="OperationCanceledException"/>. Any other
/// exception fails the job with its message (the server logs it; later jobs still run).</item>
/// </list>
/// </remarks>
public interface IGenerationBackend
{
    /// <summary>The loaded model: its name, samplers with their defaults, allowed sizes and LoRAs.</summary>
    ModelInfo Info { get; }

    /// <summary>
    /// Generates <see cref="GenerationRequest.ImageCount"/> images. Each <see cref="GeneratedImage.Png"/> is the same
    /// file <c>lora infer</c> writes: a PNG with a <c>parameters</c> text chunk.
    /// </summary>
    Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress> progress, CancellationToken cancellationToken);
}

/// <summary>A sampler the model can run, with the steps and guidance scale the page proposes for it.</summary>
public sealed record SamplerInfo(string Name, int DefaultSteps, double DefaultGuidanceScale);

/// <summary>A LoRA loaded with the model, offered on the page under <paramref name="Name"/>; scale 0 leaves it off.</summary>
public sealed record LoraInfo(string Name, double DefaultScale = 1.0);

/// <summary>
/// The loaded model as the page shows it. <paramref name="Samplers"/> is non-empty and its first entry is the default.
/// <paramref name="Sizes"/> is the variant's aspect-ratio bin table: the only sizes a request may ask for; the
/// page starts at the square bin.
/// </summary>
public sealed record ModelInfo(string Name, IReadOnlyList<SamplerInfo> Samplers, AspectRatioTable Sizes, IReadOnlyList<LoraInfo> Loras)
{
    /// <summary>The sampler proposed first (the first of <see cref="Samplers"/>).</summary>
    public SamplerInfo DefaultSampler => Samplers.Count > 0 ? Samplers[0] : throw new InvalidOperationException($"model '{Name}' lists no samplers");
}

/// <summary>A LoRA switched on for one request, at <paramref name="Scale"/> (never 0: LoRAs at 0 are left out).</summary>
public sealed record AppliedLora(string Name, double Scale);

/// <summary>
/// One generation request, validated and complete. LoRAs of the model that are not in <see cref="Loras"/> are off
/// for this request.
/// </summary>
public sealed record GenerationRequest(
    string Prompt,
    string NegativePrompt,
    string Sampler,
    int Steps,
    double GuidanceScale,
    long Seed,
    int Width,
    int Height,
    int ImageCount,
    IReadOnlyList<AppliedLora> Loras);

/// <summary>
/// Progress of the running request: <paramref name="Step"/> of <paramref name="TotalSteps"/> sampler steps done.
/// <paramref name="Stage"/> optionally names what happens outside the step loop ("encoding prompt", "decoding").
/// </summary>
public readonly record struct GenerationProgress(int Step, int TotalSteps, string? Stage = null);

/// <summary>
/// One finished image: the PNG file (with its <c>parameters</c> text chunk), its size, the seed it used, and the
/// same <c>parameters</c> text (infotext) that the PNG carries, shown on the page.
/// </summary>
public sealed record GeneratedImage(byte[] Png, int Width, int Height, long Seed, string Parameters);
