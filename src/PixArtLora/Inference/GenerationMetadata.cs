using System.Globalization;
using PixArtLora.Data.Images;

namespace PixArtLora.Inference;

/// <summary>
/// The generation parameters written into every PNG's <c>parameters</c> chunk, in one place so that <c>lora infer</c>,
/// the web demo and library users write the same infotext for the same image.
/// </summary>
public static class GenerationMetadata
{
    /// <summary>
    /// Parameters of image <paramref name="index"/> of <paramref name="result"/>: its prompt (as given, before
    /// lower-casing), seed, size as requested (and the generated size when binned), sampler, steps, guidance, model,
    /// LoRAs with their scales, and the T5 token length.
    /// </summary>
    public static GenerationParameters Describe(GenerationResult result, int index, string model, string negativePrompt,
        IEnumerable<LoraSpec> loras, int maxSequenceLength, string? checkpoint = null)
    {
        var item = result.Items[index];
        var extra = new List<KeyValuePair<string, string>>();
        if (result.Size.NeedsResize) extra.Add(new("Generated size", $"{result.Size.GeneratedWidth}x{result.Size.GeneratedHeight}"));
        if (checkpoint is not null) extra.Add(new("Checkpoint", checkpoint));
        extra.Add(new("Max sequence length", maxSequenceLength.ToString(CultureInfo.InvariantCulture)));
        return new GenerationParameters
        {
            Prompt = item.Prompt, NegativePrompt = negativePrompt, Steps = result.Sampling.Steps, Sampler = result.Sampling.DisplayName,
            CfgScale = result.Sampling.GuidanceScale, Seed = item.Seed, Width = result.Size.Width, Height = result.Size.Height,
            Model = model,
            Loras = loras.Select(l => new LoraReference(Path.GetFileNameWithoutExtension(l.Path.TrimEnd('/', '\\')), l.Scale)).ToList(),
            Extra = extra,
        };
    }

    /// <summary>Image <paramref name="index"/> of <paramref name="result"/> as PNG bytes with its parameters chunk.</summary>
    public static byte[] EncodePng(GenerationResult result, int index, GenerationParameters parameters)
    {
        using var image = result.ToImage(index);
        return PngImageFile.Encode(image, parameters);
    }
}
