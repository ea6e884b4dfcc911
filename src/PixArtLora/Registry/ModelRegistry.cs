using PixArtLora.Models.Transformer;

namespace PixArtLora.Registry;

/// <summary>
/// Every released PixArt-α / PixArt-Σ variant, plus <c>tiny</c> for tests and offline demos. Facts and their sources:
/// tests/fixtures/pixart_tables.json (official repository @1ce521a, diffusers @58eb52c) and the Hub repositories.
/// </summary>
public static class ModelRegistry
{
    const string AlphaOrg = "PixArt-alpha";
    /// <summary>Σ releases hold only transformer/; text encoder, tokenizer, VAE and scheduler come from this repository.</summary>
    public const string SigmaComponentsRepo = "PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers";

    /// <summary>The released transformer: PixArt-XL/2 (28 blocks, width 1152 = 16 heads × 72, patch 2, T5-XXL 4096-d captions).</summary>
    static PixArtTransformerConfig XL2(int sampleSize, double interpolationScale, bool microConditions) => new()
    {
        NumAttentionHeads = 16, AttentionHeadDim = 72, InChannels = 4, OutChannels = 8, NumLayers = 28,
        CrossAttentionDim = 1152, CaptionChannels = 4096, PatchSize = 2, SampleSize = sampleSize,
        InterpolationScale = interpolationScale,
        // Always explicit: diffusers' null default (on iff sample_size == 128) would wrongly enable it for Σ-1024-MS.
        UseAdditionalConditions = microConditions,
    };

    static readonly SamplerDefaults Official = new("dpm-solver", 20, 4.5);

    static ModelVariant Alpha(string id, string release, int imageSize, bool multiScale, double interpolationScale, bool microConditions)
    {
        string repo = $"{AlphaOrg}/{release}";
        return new ModelVariant
        {
            Id = id, Name = release, Family = PixArtFamily.Alpha, ImageSize = imageSize, MultiScale = multiScale,
            // α repositories are complete pipelines: each holds its own text_encoder/, tokenizer/, vae/, scheduler/.
            Transformer = new(repo, "transformer"), TextEncoder = new(repo, "text_encoder"),
            Tokenizer = new(repo, "tokenizer"), Scheduler = new(repo, "scheduler"),
            Vae = new VaeSpec("sd-vae-ft-ema", new(repo, "vae"), 0.18215),
            OriginalCheckpoint = new HubFile($"{AlphaOrg}/PixArt-alpha", release + ".pth"),
            TransformerConfig = XL2(imageSize / 8, interpolationScale, microConditions),
            CaptionTokens = 120,
            TrainingAspectRatios = AspectRatioBins.ForTraining(imageSize),
            InferenceAspectRatios = AspectRatioBins.ForInference(imageSize),
            Sampling = Official,
        };
    }

    static ModelVariant Sigma(string id, string release, int imageSize, bool multiScale, double interpolationScale) => new()
    {
        Id = id, Name = release, Family = PixArtFamily.Sigma, ImageSize = imageSize, MultiScale = multiScale,
        Transformer = new($"{AlphaOrg}/{release}", "transformer"),
        TextEncoder = new(SigmaComponentsRepo, "text_encoder"), Tokenizer = new(SigmaComponentsRepo, "tokenizer"),
        Scheduler = new(SigmaComponentsRepo, "scheduler"),
        Vae = new VaeSpec("sdxl-vae", new(SigmaComponentsRepo, "vae"), 0.13025),
        OriginalCheckpoint = new HubFile($"{AlphaOrg}/PixArt-Sigma", release + ".pth"),
        TransformerConfig = XL2(imageSize / 8, interpolationScale, microConditions: false),
        CaptionTokens = 300,
        TrainingAspectRatios = AspectRatioBins.ForTraining(imageSize),
        InferenceAspectRatios = AspectRatioBins.ForInference(imageSize),
        Sampling = Official,
    };

    /// <summary>
    /// The offline test model: Σ-256 in shape (same code paths, fractional interpolation scale 0.5, 256-px buckets)
    /// but 2 blocks of width 32 and 32-d captions of 32 tokens, so it runs in milliseconds on a CPU. Nothing is
    /// downloaded: <see cref="TinyModels"/> writes the whole pipeline (transformer, VAE, T5, tokenizer) with seeded
    /// random weights, the same bytes on every machine.
    /// </summary>
    static ModelVariant Tiny() => new()
    {
        Id = "tiny", Name = "PixArt-Tiny (offline test model)", Family = PixArtFamily.Sigma, ImageSize = 256, MultiScale = true,
        Transformer = null, TextEncoder = null, Tokenizer = null, Scheduler = null, OriginalCheckpoint = null,
        Vae = new VaeSpec("tiny-random", null, 0.13025),
        TransformerConfig = new PixArtTransformerConfig
        {
            NumAttentionHeads = 2, AttentionHeadDim = 16, InChannels = 4, OutChannels = 8, NumLayers = 2,
            CrossAttentionDim = 32, CaptionChannels = 32, PatchSize = 2, SampleSize = 32,
            InterpolationScale = 0.5, UseAdditionalConditions = false,
        },
        CaptionTokens = 32,
        TrainingAspectRatios = AspectRatioBins.ForTraining(256),
        InferenceAspectRatios = AspectRatioBins.ForInference(256),
        Sampling = Official,
    };

    /// <summary>
    /// The table. Choices where the sources disagree:
    /// <list type="bullet">
    /// <item>α-256 interpolation scale: 1, not 0.5. Its training config (PixArt_xl2_img256_internal.py) sets
    /// pe_interpolation 1.0, the official conversion tool writes 1, and the published diffusers config leaves the key
    /// null, which diffusers resolves to max(32 // 64, 1) = 1. Only diffusers' conversion script (0.5) and the
    /// official inference script's image_size/512 say otherwise; the weights were trained with 1.</item>
    /// <item>Aspect-ratio tables: training uses the official 40-bin tables (ASPECT_RATIO_256/512/1024/2048), the
    /// buckets PixArt was trained on, including the extreme ratios 0.26–0.28 and 2.89–3.88; generation bins with
    /// diffusers' 33-bin tables (40 for 2048) so a requested size snaps exactly where diffusers' pipelines snap it.</item>
    /// <item>Σ-2K-MS: the training config enables KV compression, but the released diffusers checkpoint and config
    /// have none (plain attention in every block), so neither does this table.</item>
    /// </list>
    /// </summary>
    public static IReadOnlyList<ModelVariant> All { get; } = new[]
    {
        Alpha("alpha-256", "PixArt-XL-2-256x256", 256, multiScale: false, interpolationScale: 1, microConditions: false),
        Alpha("alpha-512", "PixArt-XL-2-512x512", 512, multiScale: false, interpolationScale: 1, microConditions: false),
        Alpha("alpha-1024-ms", "PixArt-XL-2-1024-MS", 1024, multiScale: true, interpolationScale: 2, microConditions: true),
        Sigma("sigma-256", "PixArt-Sigma-XL-2-256x256", 256, multiScale: false, interpolationScale: 0.5),
        Sigma("sigma-512-ms", "PixArt-Sigma-XL-2-512-MS", 512, multiScale: true, interpolationScale: 1),
        Sigma("sigma-1024-ms", "PixArt-Sigma-XL-2-1024-MS", 1024, multiScale: true, interpolationScale: 2),
        Sigma("sigma-2k-ms", "PixArt-Sigma-XL-2-2K-MS", 2048, multiScale: true, interpolationScale: 4),
        Tiny(),
    };

    /// <summary>
    /// The variant with this id (<c>sigma-1024-ms</c>), release name (<c>PixArt-Sigma-XL-2-1024-MS</c>) or transformer
    /// repository (<c>PixArt-alpha/PixArt-Sigma-XL-2-1024-MS</c>), ignoring case; null if none.
    /// </summary>
    public static ModelVariant? Find(string idOrRepo)
    {
        string key = idOrRepo.Trim().TrimEnd('/');
        return All.FirstOrDefault(v => string.Equals(v.Id, key, StringComparison.OrdinalIgnoreCase))
               ?? All.FirstOrDefault(v => string.Equals(v.Name, key, StringComparison.OrdinalIgnoreCase)
                                          || string.Equals(v.Transformer?.Repo, key, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>As <see cref="Find"/>, throwing a message that lists the known ids when nothing matches.</summary>
    public static ModelVariant Get(string idOrRepo) =>
        Find(idOrRepo) ?? throw new KeyNotFoundException(
            $"unknown model variant '{idOrRepo}' (known: {string.Join(", ", All.Select(v => v.Id))}; or a Hugging Face repo id of one of them)");

    /// <summary>True when <paramref name="idOrRepo"/> names a registry variant.</summary>
    public static bool TryGet(string idOrRepo, out ModelVariant variant)
    {
        variant = Find(idOrRepo)!;
        return variant is not null;
    }
}
