namespace PixArtLora.Server;

/// <summary>
/// The JSON body of <c>POST /api/jobs</c>, as sent (camelCase names). Absent fields take the model's defaults;
/// <see cref="RequestValidator"/> turns it into a <see cref="GenerationRequest"/> or a 400 message.
/// </summary>
public sealed class GenerationRequestBody
{
    public string? Prompt { get; set; }
    public string? NegativePrompt { get; set; }
    public string? Sampler { get; set; }
    public int? Steps { get; set; }
    public double? GuidanceScale { get; set; }
    /// <summary>Absent or null: the server draws a random seed and reports it.</summary>
    public long? Seed { get; set; }
    public int? Width { get; set; }
    public int? Height { get; set; }
    public int? ImageCount { get; set; }
    public List<LoraBody>? Loras { get; set; }

    /// <summary>One entry of <c>loras</c>: a LoRA name from <c>/api/info</c> and its scale (0 = off).</summary>
    public sealed class LoraBody
    {
        public string? Name { get; set; }
        public double? Scale { get; set; }
    }
}
