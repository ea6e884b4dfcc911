using System.Text.Json.Nodes;
using PixArtLora.Hub;
using PixArtLora.Registry;

namespace PixArtLora.Training.Loop;

/// <summary>
/// The local folders of every component a run needs: the transformer to train, the T5 encoder and tokenizer for the
/// captions, the VAE for the images, and the scheduler config for validation images. Resolved from a registry variant
/// (downloaded through the Hub client; <c>tiny</c> is generated offline), a local diffusers pipeline folder, or the
/// Hugging Face id of one.
/// </summary>
public sealed record TrainingModelFiles
{
    /// <summary>What was asked for, as the user wrote it (recorded in outputs and checkpoints).</summary>
    public required string Model { get; init; }
    /// <summary>The registry variant, when the model is one (or is identified as one).</summary>
    public ModelVariant? Variant { get; init; }
    public required string TransformerFolder { get; init; }
    public required string TextEncoderFolder { get; init; }
    public required string TokenizerFolder { get; init; }
    public required string VaeFolder { get; init; }
    public string? SchedulerFolder { get; init; }
    /// <summary>The T5 token length the base model was trained with (α 120, Σ 300), when known.</summary>
    public int? CaptionTokens { get; init; }

    static readonly string[] PipelineParts = { "transformer", "text_encoder", "tokenizer", "vae" };

    /// <summary>
    /// Finds or downloads the components of <paramref name="model"/>. <paramref name="hub"/> is created only when something
    /// must come from the Hub; <paramref name="revision"/> applies to the transformer's repository.
    /// </summary>
    public static TrainingModelFiles Resolve(string model, string? revision, Func<HubClient> hub, IProgress<HubFileProgress>? progress = null,
        string? modelsRoot = null)
    {
        if (Directory.Exists(model)) return FromPipelineFolder(model, model);
        if (ModelRegistry.Find(model) is { } variant)
        {
            if (variant.IsOffline)
            {
                if (variant.Id != TinyModels.VariantId)
                    throw new ArgumentException($"model '{model}' ({variant.Name}) has no published weights and no offline generator");
                return FromPipelineFolder(TinyModels.EnsurePipeline(modelsRoot), model) with { Variant = variant, CaptionTokens = variant.CaptionTokens };
            }
            var client = hub();
            string Get(HubComponent? c, string what, string? rev = null) => c is null
                ? throw new InvalidOperationException($"registry variant {variant.Id} lists no {what} component")
                : client.GetFolder(c.Repo, c.Subfolder, HubRepoType.Model, rev ?? "main", progress);
            return new TrainingModelFiles
            {
                Model = model, Variant = variant,
                TransformerFolder = Get(variant.Transformer, "transformer", revision),
                TextEncoderFolder = Get(variant.TextEncoder, "text_encoder"),
                TokenizerFolder = Get(variant.Tokenizer, "tokenizer"),
                VaeFolder = Get(variant.Vae.Source, "vae"),
                SchedulerFolder = variant.Scheduler is null ? null : Get(variant.Scheduler, "scheduler"),
                CaptionTokens = variant.CaptionTokens,
            };
        }
        if (!HubRepo.IsValidId(model))
            throw new ArgumentException($"--pretrained_model_name_or_path '{model}': not a folder, not a registry variant " +
                                        $"({string.Join(", ", ModelRegistry.All.Select(v => v.Id))}) and not a Hugging Face id (org/name)");
        var pipelineHub = hub();
        var snapshot = pipelineHub.Resolve(model, HubRepoType.Model, PipelineParts.Select(p => p + "/").ToList(), revision ?? "main", progress);
        // The scheduler config and model_index.json are optional: fetched when the repository has them.
        foreach (var optional in new[] { "scheduler/", "model_index.json" })
            try { pipelineHub.Resolve(model, HubRepoType.Model, new[] { optional }, revision ?? "main", progress); }
            catch (HubNotFoundException) { }
        return FromPipelineFolder(snapshot.Folder, model);
    }

    /// <summary>A diffusers pipeline folder: transformer/, text_encoder/, tokenizer/, vae/ and optionally scheduler/.</summary>
    public static TrainingModelFiles FromPipelineFolder(string folder, string model)
    {
        string full = Path.GetFullPath(folder);
        var missing = PipelineParts.Where(p => !Directory.Exists(Path.Combine(full, p))).ToList();
        if (missing.Count > 0)
            throw new DirectoryNotFoundException(
                $"{full} is not a complete diffusers pipeline folder: missing {string.Join(", ", missing.Select(m => m + "/"))} " +
                "(training needs transformer/, text_encoder/, tokenizer/ and vae/; for a transformer-only folder such as a Σ release, " +
                "use the registry id, e.g. sigma-512-ms, so the other components come from the Σ components repository)");
        string transformer = Path.Combine(full, "transformer");
        var variant = PixArtLora.Lora.TransformerFolder.Identify(transformer);
        string scheduler = Path.Combine(full, "scheduler");
        return new TrainingModelFiles
        {
            Model = model, Variant = variant,
            TransformerFolder = transformer,
            TextEncoderFolder = Path.Combine(full, "text_encoder"),
            TokenizerFolder = Path.Combine(full, "tokenizer"),
            VaeFolder = Path.Combine(full, "vae"),
            SchedulerFolder = Directory.Exists(scheduler) ? scheduler : null,
            CaptionTokens = variant?.CaptionTokens ?? TokensFromPipelineClass(full),
        };
    }

    /// <summary>120 for a PixArtAlphaPipeline folder, 300 for PixArtSigmaPipeline (their pipelines' max_sequence_length), else null.</summary>
    static int? TokensFromPipelineClass(string folder)
    {
        string index = Path.Combine(folder, "model_index.json");
        if (!File.Exists(index)) return null;
        try
        {
            return (JsonNode.Parse(File.ReadAllText(index))?["_class_name"]?.GetValue<string>()) switch
            {
                "PixArtAlphaPipeline" => 120,
                "PixArtSigmaPipeline" => 300,
                _ => null,
            };
        }
        catch (System.Text.Json.JsonException) { return null; }
    }

    public override string ToString() => Variant is { } v ? $"{v.Name} ({v.Id})" : Model;
}
