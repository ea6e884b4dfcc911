namespace PixArtLora.Server;

/// <summary>
/// What one request may ask for. The server enforces these before anything reaches the backend, so a shared demo
/// cannot be tied up by a single huge request; the page reads them to bound its inputs.
/// </summary>
public sealed record RequestLimits
{
    /// <summary>Characters in the prompt and in the negative prompt (T5 reads 120–300 tokens; longer text is cut anyway).</summary>
    public int MaxPromptLength { get; init; } = 2000;
    /// <summary>Sampler steps: 1 to this.</summary>
    public int MaxSteps { get; init; } = 1000;
    /// <summary>Images per request.</summary>
    public int MaxImages { get; init; } = 4;
    /// <summary>Classifier-free guidance scale range.</summary>
    public double MinGuidanceScale { get; init; } = 0;
    public double MaxGuidanceScale { get; init; } = 30;
    /// <summary>LoRA scale range (negative scales invert a LoRA, which some people use on purpose).</summary>
    public double MinLoraScale { get; init; } = -2;
    public double MaxLoraScale { get; init; } = 2;
    /// <summary>Largest seed: 2^53 − 1, the largest integer a browser's JavaScript keeps exactly.</summary>
    public long MaxSeed { get; init; } = (1L << 53) - 1;
    /// <summary>Jobs waiting behind the running one; further requests get 503 until the queue drains.</summary>
    public int MaxQueuedJobs { get; init; } = 16;
}
