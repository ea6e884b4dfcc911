using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Registry;

/// <summary>
/// The offline <c>tiny</c> model as a complete diffusers pipeline folder (model_index.json, transformer/,
/// text_encoder/, tokenizer/, vae/, scheduler/), written once into a cache folder and reused, so that inference,
/// training and tests run it with no network. Every weight is a deterministic function of <see cref="Seed"/> and the
/// tensor's name: two machines generate byte-identical folders.
/// </summary>
/// <remarks>
/// Shapes: the registry's tiny transformer (Σ-256-like: 2 blocks of width 32, 32-d captions), a 2-layer T5 v1.1
/// encoder with d_model 32 and the real 32128-entry vocabulary (so that the real T5 tokenizer's ids fit), the real
/// T5 SentencePiece model (embedded in this library), a 4-block AutoencoderKL (4 latent channels, 8× downsampling,
/// 16 channels per block because TorchSharp's bf16 conv2d on CPU is wrong for other channel counts) and
/// DPM-Solver++ as the PixArt releases configure it.
/// </remarks>
public static partial class TinyModels
{
    /// <summary>The registry id of the tiny variant.</summary>
    public const string VariantId = "tiny";

    /// <summary>Bumped whenever the generated files change, so an old cached folder is never mistaken for a new one.</summary>
    public const int FormatVersion = 1;

    /// <summary>The seed every weight is derived from.</summary>
    public const ulong Seed = 0x5049_5841_5254; // "PIXART"

    /// <summary>Environment variable naming PixArtLora's own cache root (default ~/.cache/pixartlora).</summary>
    public const string HomeVariable = "PIXARTLORA_HOME";

    /// <summary>The registry entry this folder implements.</summary>
    public static ModelVariant Variant => ModelRegistry.Get(VariantId);

    /// <summary>
    /// $PIXARTLORA_HOME/models, else $XDG_CACHE_HOME/pixartlora/models, else ~/.cache/pixartlora/models.
    /// </summary>
    public static string DefaultModelsRoot(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        if (getEnv(HomeVariable) is { Length: > 0 } home) return Path.Combine(home, "models");
        string cache = getEnv("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "pixartlora", "models");
    }

    /// <summary>
    /// The tiny pipeline folder under <paramref name="modelsRoot"/> (default <see cref="DefaultModelsRoot"/>),
    /// generated on first use. Concurrent first uses are safe: each writes a private temporary folder and the first
    /// rename wins; a reader never sees a half-written folder.
    /// </summary>
    public static string EnsurePipeline(string? modelsRoot = null)
    {
        string folder = Path.Combine(modelsRoot ?? DefaultModelsRoot(), $"{VariantId}-v{FormatVersion}");
        if (File.Exists(Path.Combine(folder, "model_index.json"))) return folder;
        string parent = Path.GetDirectoryName(Path.GetFullPath(folder))!;
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(folder)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            WritePipeline(tmp);
            try { Directory.Move(tmp, folder); }
            catch (IOException) when (File.Exists(Path.Combine(folder, "model_index.json")))
            {
                // Another process finished first; its folder is byte-identical to ours.
            }
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
        if (!File.Exists(Path.Combine(folder, "model_index.json")))
            throw new IOException($"{folder}: exists but holds no model_index.json; delete it and run again to regenerate the tiny model");
        return folder;
    }

    /// <summary>Writes the whole pipeline into <paramref name="folder"/> (created; existing files are overwritten).</summary>
    public static void WritePipeline(string folder) =>
        WritePipeline(folder, Variant.TransformerConfig, VaeConfig, TextEncoderConfigJson(), "PixArtSigmaPipeline");

    /// <summary>
    /// A pipeline folder of the given components' configs with seeded weights, the tiny tokenizer and the scheduler
    /// (also how <see cref="Benchmarks.RandomPipelineFolder"/> writes a released variant's shapes).
    /// </summary>
    internal static void WritePipeline(string folder, PixArtTransformerConfig transformer, AutoencoderKLConfig vae, JsonObject textEncoder, string pipelineClass)
    {
        Directory.CreateDirectory(folder);
        WriteTransformer(Path.Combine(folder, "transformer"), transformer);
        WriteTextEncoder(Path.Combine(folder, "text_encoder"), textEncoder);
        WriteTokenizer(Path.Combine(folder, "tokenizer"));
        WriteVae(Path.Combine(folder, "vae"), vae);
        WriteScheduler(Path.Combine(folder, "scheduler"));
        AtomicFile.WriteAllText(Path.Combine(folder, "model_index.json"), ModelIndexJson(pipelineClass));
    }

    /// <summary>transformer/: <paramref name="config"/> (default: the registry's tiny one) and seeded weights.</summary>
    public static void WriteTransformer(string folder, PixArtTransformerConfig? config = null)
    {
        config ??= Variant.TransformerConfig;
        Directory.CreateDirectory(folder);
        var layout = PixArtTransformer2DModel.DescribeParameters(config).Select(t => (t.Name, t.Shape));
        SaveSeeded(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), layout, "transformer");
        config.Save(Path.Combine(folder, "config.json"));
    }

    /// <summary>scheduler/scheduler_config.json: diffusers' default DPMSolverMultistepScheduler config, which both PixArt
    /// conversion scripts write (DPM-Solver++ 2M, linear betas 1e-4..0.02 over 1000 steps, epsilon prediction).</summary>
    public static void WriteScheduler(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "scheduler_config.json"), SchedulerConfigJson);
    }

    /// <summary>The scheduler config text written by <see cref="WriteScheduler"/>.</summary>
    public const string SchedulerConfigJson = """
        {
          "_class_name": "DPMSolverMultistepScheduler",
          "_diffusers_version": "0.31.0",
          "algorithm_type": "dpmsolver++",
          "beta_end": 0.02,
          "beta_schedule": "linear",
          "beta_start": 0.0001,
          "dynamic_thresholding_ratio": 0.995,
          "euler_at_final": false,
          "final_sigmas_type": "zero",
          "lambda_min_clipped": -Infinity,
          "lower_order_final": true,
          "num_train_timesteps": 1000,
          "prediction_type": "epsilon",
          "rescale_betas_zero_snr": false,
          "sample_max_value": 1.0,
          "solver_order": 2,
          "solver_type": "midpoint",
          "steps_offset": 0,
          "thresholding": false,
          "timestep_spacing": "linspace",
          "trained_betas": null,
          "use_beta_sigmas": false,
          "use_exponential_sigmas": false,
          "use_karras_sigmas": false,
          "use_lu_lambdas": false,
          "variance_type": null
        }
        """;

    /// <summary>Resource name of the embedded T5 SentencePiece model (Apache-2.0, from Google's T5).</summary>
    const string SpieceResource = "PixArtLora.Tokenizer.t5-spiece.model";

    /// <summary>The bytes of the real T5 <c>spiece.model</c> (32000 pieces) embedded in this library.</summary>
    public static byte[] T5SentencePieceModel()
    {
        using var stream = typeof(TinyModels).Assembly.GetManifestResourceStream(SpieceResource)
                           ?? throw new InvalidOperationException($"embedded resource {SpieceResource} is missing from {typeof(TinyModels).Assembly.GetName().Name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>tokenizer/: spiece.model plus the configs transformers' T5Tokenizer reads (100 extra ids, legacy mode).</summary>
    public static void WriteTokenizer(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllBytes(Path.Combine(folder, "spiece.model"), T5SentencePieceModel());
        var extraIds = new JsonArray(Enumerable.Range(0, 100).Select(i => (JsonNode)JsonValue.Create($"<extra_id_{i}>")!).ToArray());
        var config = new JsonObject
        {
            ["tokenizer_class"] = "T5Tokenizer", ["model_max_length"] = 512, ["extra_ids"] = 100, ["legacy"] = true,
            ["eos_token"] = "</s>", ["pad_token"] = "<pad>", ["unk_token"] = "<unk>",
            ["additional_special_tokens"] = extraIds,
        };
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString(Indented));
        var special = new JsonObject
        {
            ["eos_token"] = "</s>", ["pad_token"] = "<pad>", ["unk_token"] = "<unk>",
            ["additional_special_tokens"] = extraIds.DeepClone(),
        };
        AtomicFile.WriteAllText(Path.Combine(folder, "special_tokens_map.json"), special.ToJsonString(Indented));
    }

    static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>model_index.json of a diffusers PixArt pipeline folder (<paramref name="pipelineClass"/>: PixArtSigmaPipeline or PixArtAlphaPipeline).</summary>
    static string ModelIndexJson(string pipelineClass) => new JsonObject
    {
        ["_class_name"] = pipelineClass,
        ["_diffusers_version"] = "0.31.0",
        ["scheduler"] = new JsonArray("diffusers", "DPMSolverMultistepScheduler"),
        ["text_encoder"] = new JsonArray("transformers", "T5EncoderModel"),
        ["tokenizer"] = new JsonArray("transformers", "T5Tokenizer"),
        ["transformer"] = new JsonArray("diffusers", "PixArtTransformer2DModel"),
        ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
    }.ToJsonString(Indented);

    /// <summary>
    /// Writes a safetensors file whose tensors are seeded random values: each tensor draws from its own generator,
    /// seeded from <see cref="Seed"/>, <paramref name="component"/> and its name, so values never depend on order.
    /// Matrices get N(0, 1/fan_in) (unit-scale activations); norm weights 1 + N(0, 0.1²); other vectors N(0, 0.05²).
    /// </summary>
    internal static void SaveSeeded(string path, IEnumerable<(string Name, long[] Shape)> layout, string component)
    {
        var sources = layout.OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new TensorSource(t.Name, ScalarType.Float32, t.Shape, () => SeededTensor(component, t.Name, t.Shape)))
            .ToList();
        SafetensorsWriter.Save(path, sources, new Dictionary<string, string> { ["format"] = "pt" });
    }

    static Tensor SeededTensor(string component, string name, long[] shape)
    {
        using var generator = new Generator(StableHash(component + "/" + name) ^ Seed);
        using var scope = NewDisposeScope();
        var values = randn(shape, dtype: float32, generator: generator);
        Tensor result;
        if (shape.Length >= 2)
        {
            long fanIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            result = values / Math.Sqrt(fanIn);
        }
        else if (IsNormWeight(name)) result = values * 0.1 + 1.0;
        else result = values * 0.05;
        return result.MoveToOuterDisposeScope();
    }

    static bool IsNormWeight(string name) =>
        name.EndsWith(".weight", StringComparison.Ordinal) && name.Contains("norm", StringComparison.OrdinalIgnoreCase);

    /// <summary>64-bit FNV-1a of the UTF-8 bytes: stable across processes and .NET versions, unlike string.GetHashCode.</summary>
    static ulong StableHash(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }
}
