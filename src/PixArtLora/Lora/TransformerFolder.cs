using PixArtLora.Models.Transformer;
using PixArtLora.Registry;

namespace PixArtLora.Lora;

/// <summary>
/// Finds the transformer of a base model on disk — the transformer folder itself (config.json +
/// diffusion_pytorch_model*.safetensors), a pipeline folder with a <c>transformer/</c> subfolder, or a registry variant
/// (<c>sigma-1024-ms</c>, <c>PixArt-alpha/PixArt-Sigma-XL-2-1024-MS</c>) fetched by a caller-supplied function — and
/// tells which registry variant a folder holds, for messages and for checking an adapter's recorded base model.
/// </summary>
public static class TransformerFolder
{
    /// <summary>The weights' base name in diffusers' layout.</summary>
    public const string WeightsBaseName = "diffusion_pytorch_model";

    /// <summary>
    /// The folder holding the transformer's config.json and weights. A name that is not a folder is looked up in the
    /// <see cref="ModelRegistry"/>; <paramref name="fetch"/> (e.g. the Hub client's GetFolder) turns the variant's
    /// transformer component into a local folder. Without it, the error says which repository to download.
    /// </summary>
    public static string Resolve(string pathOrVariant, Func<HubComponent, string>? fetch = null)
    {
        if (Directory.Exists(pathOrVariant)) return FindIn(pathOrVariant);
        if (ModelRegistry.Find(pathOrVariant) is not { } variant)
            throw new DirectoryNotFoundException(
                $"base model '{pathOrVariant}' is neither a folder nor a registry variant (known: {string.Join(", ", ModelRegistry.All.Select(v => v.Id))})");
        if (variant.Transformer is not { } component)
            throw new ArgumentException($"'{variant.Id}' ({variant.Name}) has no published weights; pass the folder of a trained or saved model");
        if (fetch == null)
            throw new DirectoryNotFoundException(
                $"'{pathOrVariant}' is the registry variant {variant.Id} ({component}); it is not available locally — download it and pass its folder");
        return FindIn(fetch(component));
    }

    static string FindIn(string path)
    {
        if (HasWeights(path)) return path;
        string sub = Path.Combine(path, "transformer");
        if (Directory.Exists(sub) && HasWeights(sub)) return sub;
        throw new FileNotFoundException(
            $"{path}: no transformer here — expected config.json and {WeightsBaseName}*.safetensors in this folder or in its transformer/ subfolder");
    }

    static bool HasWeights(string folder) =>
        File.Exists(Path.Combine(folder, "config.json")) && Directory.EnumerateFiles(folder, "*.safetensors").Any();

    /// <summary>The registry variant whose transformer has exactly this folder's architecture, or null (custom, tiny, or ambiguous).</summary>
    public static ModelVariant? Identify(string transformerFolder)
    {
        PixArtTransformerConfig config;
        try { config = PixArtTransformerConfig.Load(Path.Combine(transformerFolder, "config.json")); }
        catch (Exception e) when (e is InvalidDataException or IOException) { return null; }
        // α-512 and Σ-512-MS share every shape and setting: an ambiguous folder is reported as unknown, not guessed.
        var matches = ModelRegistry.All.Where(v => v.Transformer != null && SameArchitecture(v.TransformerConfig, config)).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    /// <summary>"PixArt-Sigma-XL-2-1024-MS (sigma-1024-ms)" or "a PixArt transformer (2 blocks, width 16)", from config.json.</summary>
    public static string Describe(string transformerFolder)
    {
        if (Identify(transformerFolder) is { } v) return $"{v.Name} ({v.Id}) in {transformerFolder}";
        try
        {
            var c = PixArtTransformerConfig.Load(Path.Combine(transformerFolder, "config.json"));
            return $"the PixArt transformer in {transformerFolder} ({c.NumLayers} blocks, width {c.InnerDim}, captions {c.CaptionChannels})";
        }
        catch (Exception e) when (e is InvalidDataException or IOException) { return $"the transformer in {transformerFolder}"; }
    }

    /// <summary>
    /// A warning when an adapter records (metadata <c>base_model</c>) a registry variant other than the base it is applied to:
    /// the shapes may fit (α and Σ share them) while the adapter was trained for another model.
    /// </summary>
    public static string? BaseModelMismatch(LoraWeights adapter, ModelVariant? baseVariant)
    {
        if (baseVariant == null || !adapter.Metadata.TryGetValue(LoraFile.MetadataBaseModel, out var recorded)) return null;
        if (ModelRegistry.Find(recorded) is not { } trainedOn || trainedOn.Id == baseVariant.Id) return null;
        return $"{adapter.Source} was trained on {trainedOn.Name} ({trainedOn.Id}) but is applied to {baseVariant.Name} ({baseVariant.Id})";
    }

    static bool SameArchitecture(PixArtTransformerConfig a, PixArtTransformerConfig b) =>
        a.NumLayers == b.NumLayers && a.NumAttentionHeads == b.NumAttentionHeads && a.AttentionHeadDim == b.AttentionHeadDim &&
        a.SampleSize == b.SampleSize && a.PatchSize == b.PatchSize && a.CaptionChannels == b.CaptionChannels &&
        a.InChannels == b.InChannels && a.ResolvedOutChannels == b.ResolvedOutChannels &&
        a.ResolvedUseAdditionalConditions == b.ResolvedUseAdditionalConditions && a.ResolvedInterpolationScale == b.ResolvedInterpolationScale;
}
