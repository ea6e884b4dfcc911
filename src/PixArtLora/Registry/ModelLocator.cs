using System.Text.Json;
using PixArtLora.Models.Transformer;

namespace PixArtLora.Registry;

/// <summary>The parts of a PixArt pipeline, as diffusers names its subfolders.</summary>
public enum PipelineComponent { Transformer, TextEncoder, Tokenizer, Vae, Scheduler }

/// <summary>Where one component lives: a local folder, or a folder of a Hugging Face repository still to fetch.</summary>
public sealed record ComponentLocation(string? LocalFolder, HubComponent? Hub)
{
    public static ComponentLocation Local(string folder) => new(Path.GetFullPath(folder), null);
    public static ComponentLocation OnHub(HubComponent component) => new(null, component);

    public override string ToString() => LocalFolder ?? Hub!.ToString();
}

/// <summary>
/// Where every component of a model is (nothing fetched yet). Σ releases, for instance, hold only transformer/ and take
/// the rest from <see cref="ModelRegistry.SigmaComponentsRepo"/>; a bare transformer folder takes the rest from the
/// registry variant of the same architecture or from an explicitly named source.
/// </summary>
public sealed record ModelLocation
{
    /// <summary>What was asked for (registry id, folder or Hub id).</summary>
    public required string Source { get; init; }
    /// <summary>The registry variant the model is (or whose components it borrows); null for an unknown architecture.</summary>
    public ModelVariant? Variant { get; init; }
    public required ComponentLocation Transformer { get; init; }
    public ComponentLocation? TextEncoder { get; init; }
    public ComponentLocation? Tokenizer { get; init; }
    public ComponentLocation? Vae { get; init; }
    public ComponentLocation? Scheduler { get; init; }

    /// <summary>The location of <paramref name="component"/>, or an error saying how to provide it.</summary>
    public ComponentLocation Require(PipelineComponent component) => component switch
    {
        PipelineComponent.Transformer => Transformer,
        PipelineComponent.TextEncoder => TextEncoder,
        PipelineComponent.Tokenizer => Tokenizer,
        PipelineComponent.Vae => Vae,
        PipelineComponent.Scheduler => Scheduler,
        _ => null,
    } ?? throw new InvalidOperationException(
        $"{Source}: no {ModelLocator.FolderName(component)} component (not in the model and its architecture matches no registry variant); " +
        "name where the text encoder, tokenizer, VAE and scheduler come from with components_from (a registry id such as sigma-512-ms, a pipeline folder or a Hub id)");
}

/// <summary>
/// Resolves a model name to component locations: a registry variant (its Hub folders; <c>tiny</c> generated locally
/// by <see cref="TinyModels"/>), a local diffusers pipeline folder (model_index.json), a local transformer folder, or
/// a Hugging Face id of a diffusers pipeline. Nothing is downloaded here; see <see cref="Fetch"/>.
/// </summary>
public static class ModelLocator
{
    /// <summary>diffusers' subfolder name of a component.</summary>
    public static string FolderName(PipelineComponent component) => component switch
    {
        PipelineComponent.Transformer => "transformer",
        PipelineComponent.TextEncoder => "text_encoder",
        PipelineComponent.Tokenizer => "tokenizer",
        PipelineComponent.Vae => "vae",
        _ => "scheduler",
    };

    /// <summary>
    /// Locates <paramref name="model"/>'s components. <paramref name="componentsFrom"/> (same forms as the model) supplies
    /// every component but the transformer, overriding what the model itself has. <paramref name="tinyModelsRoot"/> is
    /// where the tiny model is generated (default <see cref="TinyModels.DefaultModelsRoot"/>).
    /// </summary>
    public static ModelLocation Locate(string model, string? componentsFrom = null, string? tinyModelsRoot = null)
    {
        if (string.IsNullOrWhiteSpace(model)) throw new ArgumentException("no model given (model_id: a registry id, a local folder or a Hugging Face id)");
        var location = LocateOne(model.Trim(), tinyModelsRoot);
        if (componentsFrom is { Length: > 0 })
        {
            var donor = LocateOne(componentsFrom.Trim(), tinyModelsRoot);
            location = location with
            {
                Variant = location.Variant ?? donor.Variant,
                TextEncoder = donor.TextEncoder, Tokenizer = donor.Tokenizer, Vae = donor.Vae, Scheduler = donor.Scheduler,
            };
        }
        return location;
    }

    static ModelLocation LocateOne(string model, string? tinyModelsRoot)
    {
        if (Directory.Exists(model)) return LocateFolder(Path.GetFullPath(model));
        if (ModelRegistry.Find(model) is { } variant) return LocateVariant(variant, tinyModelsRoot);
        if (File.Exists(model))
            throw new ArgumentException($"model '{model}' is a file; expected a folder (a diffusers pipeline or transformer folder), a registry id or a Hugging Face id");
        if (Hub.HubRepo.IsValidId(model))
        {
            // A diffusers pipeline repository: each component is the folder of the same name.
            ComponentLocation At(PipelineComponent c) => ComponentLocation.OnHub(new HubComponent(model, FolderName(c)));
            return new ModelLocation
            {
                Source = model, Variant = null, Transformer = At(PipelineComponent.Transformer),
                TextEncoder = At(PipelineComponent.TextEncoder), Tokenizer = At(PipelineComponent.Tokenizer),
                Vae = At(PipelineComponent.Vae), Scheduler = At(PipelineComponent.Scheduler),
            };
        }
        throw new ArgumentException(
            $"model '{model}' is neither a registry variant ({string.Join(", ", ModelRegistry.All.Select(v => v.Id))}), an existing folder nor a Hugging Face id (org/name)");
    }

    /// <summary>A registry variant: its Hub folders, or the locally generated tiny pipeline.</summary>
    public static ModelLocation LocateVariant(ModelVariant variant, string? tinyModelsRoot = null)
    {
        if (variant.IsOffline)
        {
            if (variant.Id != TinyModels.VariantId)
                throw new InvalidOperationException($"registry variant {variant.Id} has no published weights and no generator");
            return LocateFolder(TinyModels.EnsurePipeline(tinyModelsRoot)) with { Source = variant.Id, Variant = variant };
        }
        ComponentLocation? Hub(HubComponent? c) => c is null ? null : ComponentLocation.OnHub(c);
        return new ModelLocation
        {
            Source = variant.Id, Variant = variant, Transformer = Hub(variant.Transformer)!,
            TextEncoder = Hub(variant.TextEncoder), Tokenizer = Hub(variant.Tokenizer),
            Vae = Hub(variant.Vae.Source), Scheduler = Hub(variant.Scheduler),
        };
    }

    /// <summary>
    /// A local folder: a pipeline (model_index.json and component subfolders; components listed as null or absent are
    /// taken from the registry variant of the same architecture), or a transformer folder (config.json + weights).
    /// </summary>
    public static ModelLocation LocateFolder(string folder)
    {
        string transformer;
        if (File.Exists(Path.Combine(folder, "transformer", "config.json"))) transformer = Path.Combine(folder, "transformer");
        else if (File.Exists(Path.Combine(folder, "config.json"))) transformer = folder;
        else throw new FileNotFoundException(
            $"{folder}: not a PixArt model folder (expected model_index.json with transformer/config.json, or a transformer folder with config.json and diffusion_pytorch_model*.safetensors)");

        var listed = ListedComponents(folder);
        var variant = IdentifyVariant(transformer);
        ComponentLocation? Find(PipelineComponent c, HubComponent? registryFallback)
        {
            string sub = Path.Combine(folder, FolderName(c));
            bool present = Directory.Exists(sub) && Directory.EnumerateFileSystemEntries(sub).Any();
            if (present && (listed is null || listed.Contains(FolderName(c)))) return ComponentLocation.Local(sub);
            return registryFallback is null ? null : ComponentLocation.OnHub(registryFallback);
        }
        return new ModelLocation
        {
            Source = folder, Variant = variant, Transformer = ComponentLocation.Local(transformer),
            TextEncoder = Find(PipelineComponent.TextEncoder, variant?.TextEncoder),
            Tokenizer = Find(PipelineComponent.Tokenizer, variant?.Tokenizer),
            Vae = Find(PipelineComponent.Vae, variant?.Vae.Source),
            Scheduler = Find(PipelineComponent.Scheduler, variant?.Scheduler),
        };
    }

    /// <summary>Components model_index.json lists with a class (not [null, null]); null when there is no model_index.json.</summary>
    static HashSet<string>? ListedComponents(string folder)
    {
        string index = Path.Combine(folder, "model_index.json");
        if (!File.Exists(index)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            return doc.RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == JsonValueKind.Array && p.Value.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.String))
                .Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        }
        catch (JsonException e) { throw new InvalidDataException($"{index}: not valid JSON ({e.Message})", e); }
    }

    /// <summary>
    /// The registry variant whose transformer has exactly this architecture (sample size, widths, conditions), or null
    /// when none or several do (α-512 and Σ-512-MS share every shape; their T5 and VAE differ only in VAE).
    /// </summary>
    public static ModelVariant? IdentifyVariant(string transformerFolder)
    {
        PixArtTransformerConfig config;
        try { config = PixArtTransformerConfig.Load(Path.Combine(transformerFolder, "config.json")); }
        catch (Exception e) when (e is InvalidDataException or IOException) { return null; }
        var matches = ModelRegistry.All.Where(v => SameArchitecture(v.TransformerConfig, config)).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    static bool SameArchitecture(PixArtTransformerConfig a, PixArtTransformerConfig b) =>
        a.NumLayers == b.NumLayers && a.NumAttentionHeads == b.NumAttentionHeads && a.AttentionHeadDim == b.AttentionHeadDim &&
        a.SampleSize == b.SampleSize && a.PatchSize == b.PatchSize && a.CaptionChannels == b.CaptionChannels &&
        a.InChannels == b.InChannels && a.ResolvedOutChannels == b.ResolvedOutChannels &&
        a.ResolvedUseAdditionalConditions == b.ResolvedUseAdditionalConditions &&
        a.ResolvedInterpolationScale == b.ResolvedInterpolationScale;

    /// <summary>
    /// The local folder of <paramref name="location"/>: as is when local, else through <paramref name="fetch"/>
    /// (typically <c>HubClient.GetFolder(repo, subfolder)</c>).
    /// </summary>
    public static string Fetch(ComponentLocation location, Func<HubComponent, string> fetch) =>
        location.LocalFolder ?? fetch(location.Hub!);
}
