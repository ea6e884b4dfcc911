using System.Globalization;

namespace PixArtLora.Server;

/// <summary>A request the server refuses; the message names the field, what was found and what is allowed (sent as 400).</summary>
public sealed class RequestValidationException(string message) : Exception(message);

/// <summary>
/// Checks a request body against the model (samplers, size bins, LoRAs) and the server's limits, and fills in the
/// defaults. Everything that reaches <see cref="IGenerationBackend.GenerateAsync"/> has passed through here.
/// </summary>
public static class RequestValidator
{
    /// <summary>Returns the complete request, or throws <see cref="RequestValidationException"/> naming the first bad field.</summary>
    public static GenerationRequest Validate(GenerationRequestBody body, ModelInfo model, RequestLimits limits, Func<long> randomSeed)
    {
        string prompt = body.Prompt ?? "";
        if (string.IsNullOrWhiteSpace(prompt)) throw Bad("prompt: required (a non-empty string)");
        CheckLength("prompt", prompt, limits.MaxPromptLength);
        string negative = body.NegativePrompt ?? "";
        CheckLength("negativePrompt", negative, limits.MaxPromptLength);

        var sampler = body.Sampler is null
            ? model.DefaultSampler
            : model.Samplers.FirstOrDefault(s => s.Name == body.Sampler)
              ?? throw Bad($"sampler: '{body.Sampler}' is not one of {string.Join(", ", model.Samplers.Select(s => s.Name))}");

        int steps = body.Steps ?? sampler.DefaultSteps;
        CheckRange("steps", steps, 1, limits.MaxSteps);
        double guidance = body.GuidanceScale ?? sampler.DefaultGuidanceScale;
        CheckRange("guidanceScale", guidance, limits.MinGuidanceScale, limits.MaxGuidanceScale);
        long seed = body.Seed ?? randomSeed();
        CheckRange("seed", seed, 0, limits.MaxSeed);
        int images = body.ImageCount ?? 1;
        CheckRange("imageCount", images, 1, limits.MaxImages);

        var (width, height) = Size(body, model);
        var loras = Loras(body.Loras, model, limits);
        return new GenerationRequest(prompt, negative, sampler.Name, steps, guidance, seed, width, height, images, loras);
    }

    static (int Width, int Height) Size(GenerationRequestBody body, ModelInfo model)
    {
        if (body.Width is null && body.Height is null)
        {
            var square = model.Sizes.Nearest(1, 1);
            return (square.Width, square.Height);
        }
        if (body.Width is not { } w || body.Height is not { } h) throw Bad("width, height: give both or neither");
        if (model.Sizes.Contains(h, w)) return (w, h);
        var near = w > 0 && h > 0 ? model.Sizes.Nearest(h, w) : model.Sizes.Nearest(1, 1);
        throw Bad($"width, height: {w}x{h} is not one of the {model.Sizes.Bins.Count} sizes of {model.Name}'s aspect-ratio table " +
                  $"{model.Sizes.Name} (nearest in aspect ratio: {near.Width}x{near.Height})");
    }

    static List<AppliedLora> Loras(List<GenerationRequestBody.LoraBody>? given, ModelInfo model, RequestLimits limits)
    {
        var applied = new List<AppliedLora>();
        if (given is null) return applied;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < given.Count; i++)
        {
            string field = $"loras[{i}]";
            var entry = given[i] ?? throw Bad($"{field}: expected an object {{\"name\": ..., \"scale\": ...}}");
            if (string.IsNullOrEmpty(entry.Name)) throw Bad($"{field}.name: required");
            if (!model.Loras.Any(l => l.Name == entry.Name))
            {
                string available = model.Loras.Count == 0 ? "no LoRAs are loaded" : "available: " + string.Join(", ", model.Loras.Select(l => l.Name));
                throw Bad($"{field}.name: '{entry.Name}' is not a LoRA of this server ({available})");
            }
            if (!seen.Add(entry.Name)) throw Bad($"{field}.name: '{entry.Name}' is given twice");
            if (entry.Scale is not { } scale) throw Bad($"{field}.scale: required (0 = off)");
            CheckRange($"{field}.scale", scale, limits.MinLoraScale, limits.MaxLoraScale);
            if (scale != 0) applied.Add(new AppliedLora(entry.Name, scale));
        }
        return applied;
    }

    static void CheckLength(string field, string text, int max)
    {
        if (text.Length > max) throw Bad($"{field}: {text.Length} characters, at most {max} allowed");
    }

    static void CheckRange(string field, long value, long min, long max)
    {
        if (value < min || value > max) throw Bad($"{field}: {value} is out of range {min}..{max}");
    }

    static void CheckRange(string field, double value, double min, double max)
    {
        if (!(value >= min && value <= max))
            throw Bad($"{field}: {value.ToString(CultureInfo.InvariantCulture)} is out of range " +
                      $"{min.ToString(CultureInfo.InvariantCulture)}..{max.ToString(CultureInfo.InvariantCulture)}");
    }

    static RequestValidationException Bad(string message) => new(message);
}
