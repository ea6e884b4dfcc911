using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// LoRA files on disk. <see cref="Write"/> produces one <c>.safetensors</c> that ComfyUI and diffusers-based code load:
/// <c>transformer.&lt;module&gt;.lora_A.weight</c> [r, in], <c>.lora_B.weight</c> [out, r] and a scalar <c>.alpha</c> per module,
/// with rank, alpha, targets, base model and training settings in <c>__metadata__</c>. <see cref="WritePeftFolder"/> writes the
/// PEFT layout (<c>adapter_model.safetensors</c> + <c>adapter_config.json</c>). <see cref="Read"/> reads those and the
/// other namings in circulation (PEFT prefixes, kohya/OneTrainer, original PixArt names).
/// </summary>
public static class LoraFile
{
    /// <summary>Metadata key: the rank (when uniform).</summary>
    public const string MetadataRank = "lora_rank";
    /// <summary>Metadata key: lora_alpha as configured (with rsLoRA the per-module <c>.alpha</c> tensors hold alpha·√r).</summary>
    public const string MetadataAlpha = "lora_alpha";
    /// <summary>Metadata key: the target patterns, e.g. <c>attention</c> or <c>to_q,to_v @ blocks 10-27</c>.</summary>
    public const string MetadataTargets = "lora_targets";
    /// <summary>Metadata key: true when trained as rank-stabilised LoRA.</summary>
    public const string MetadataRsLora = "use_rslora";
    /// <summary>Metadata key: the base model id or folder the adapter was trained on.</summary>
    public const string MetadataBaseModel = "base_model";
    /// <summary>Metadata key: the training settings as JSON.</summary>
    public const string MetadataTraining = "training_settings";

    const string KeyPrefix = "transformer.";

    /// <summary>
    /// Reads a LoRA file or PEFT folder and places it on <paramref name="model"/>'s layers. Alpha comes from the file's
    /// <c>.alpha</c> tensors, else from <c>adapter_config.json</c> beside the file, else it is taken equal to the rank (with a
    /// warning in <see cref="LoraWeights.Warnings"/>). Keys that match no layer or shapes that do not fit are an error
    /// (with <paramref name="strict"/> false only when nothing at all fits; the rest are skipped with a warning).
    /// </summary>
    /// <param name="adapterConfigPath">An adapter_config.json to take alpha from when it is not beside the file.</param>
    public static LoraWeights Read(string path, LoraTargetCatalog model, bool strict = true, string? adapterConfigPath = null) =>
        LoraFileReader.Read(path, model, strict, adapterConfigPath);

    /// <summary>
    /// Writes <paramref name="weights"/> as one ComfyUI/diffusers-friendly .safetensors file, atomically. Factors are stored in
    /// <paramref name="dtype"/> (default: as they are), alpha as fp32 scalars.
    /// </summary>
    public static void Write(string path, LoraWeights weights, IReadOnlyDictionary<string, string>? metadata = null, ScalarType? dtype = null)
    {
        RequireModules(weights, path);
        var tensors = new List<TensorSource>();
        foreach (var (name, m) in weights.Modules)
        {
            tensors.Add(Factor(KeyPrefix + name + ".lora_A.weight", m.Down, dtype));
            tensors.Add(Factor(KeyPrefix + name + ".lora_B.weight", m.Up, dtype));
            double alpha = m.Alpha;
            tensors.Add(new TensorSource(KeyPrefix + name + ".alpha", ScalarType.Float32, Array.Empty<long>(), () => tensor((float)alpha)));
        }
        SafetensorsWriter.Save(path, tensors, MetadataFor(weights, metadata));
    }

    /// <summary>
    /// Writes the PEFT layout into <paramref name="folder"/> (replaced atomically): <c>adapter_model.safetensors</c> keyed
    /// <c>transformer.&lt;module&gt;.lora_A/B.weight</c> (diffusers' <c>save_lora_weights</c> naming) and <c>adapter_config.json</c>
    /// with <c>r</c>, <c>lora_alpha</c>, the exact module names as <c>target_modules</c>, and <c>rank_pattern</c>/<c>alpha_pattern</c>
    /// for modules that differ from the most common rank and alpha.
    /// </summary>
    public static void WritePeftFolder(string folder, LoraWeights weights, IReadOnlyDictionary<string, string>? metadata = null, ScalarType? dtype = null)
    {
        RequireModules(weights, folder);
        var meta = MetadataFor(weights, metadata);
        long r = weights.Modules.Values.GroupBy(m => m.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        double alpha = weights.Modules.Values.GroupBy(m => m.Alpha).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var rankPattern = new JsonObject();
        var alphaPattern = new JsonObject();
        foreach (var (name, m) in weights.Modules)
        {
            if (m.Rank != r) rankPattern[name] = m.Rank;
            if (m.Alpha != alpha) alphaPattern[name] = m.Alpha;
        }
        var config = new JsonObject
        {
            ["alpha_pattern"] = alphaPattern,
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = meta.TryGetValue(MetadataBaseModel, out var bm) ? bm : null,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layer_replication"] = null,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["lora_alpha"] = alpha,
            ["lora_dropout"] = 0.0,
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = r,
            ["rank_pattern"] = rankPattern,
            ["revision"] = null,
            ["target_modules"] = new JsonArray(weights.Modules.Keys.Select(k => (JsonNode)k).ToArray()),
            ["task_type"] = null,
            ["use_dora"] = false,
            // alpha already holds alpha·√r for rsLoRA adapters, so PEFT's plain alpha / r gives the trained scale.
            ["use_rslora"] = false,
        };
        var tensors = new List<TensorSource>();
        foreach (var (name, m) in weights.Modules)
        {
            tensors.Add(Factor(KeyPrefix + name + ".lora_A.weight", m.Down, dtype));
            tensors.Add(Factor(KeyPrefix + name + ".lora_B.weight", m.Up, dtype));
        }
        AtomicFile.WriteDirectory(folder, tmp =>
        {
            SafetensorsWriter.Save(Path.Combine(tmp, "adapter_model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            AtomicFile.WriteAllText(Path.Combine(tmp, "adapter_config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    static TensorSource Factor(string key, Tensor t, ScalarType? dtype)
    {
        var target = dtype ?? t.dtype;
        return new TensorSource(key, target, t.shape, () => t.to(target, CPU).contiguous());
    }

    static Dictionary<string, string> MetadataFor(LoraWeights weights, IReadOnlyDictionary<string, string>? extra)
    {
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        foreach (var (k, v) in weights.Metadata) meta[k] = v;
        if (extra != null) foreach (var (k, v) in extra) meta[k] = v;
        meta[MetadataRank] = weights.UniformRank?.ToString(CultureInfo.InvariantCulture) ?? "mixed";
        if (!meta.ContainsKey(MetadataAlpha))
            meta[MetadataAlpha] = weights.UniformAlpha?.ToString("R", CultureInfo.InvariantCulture) ?? "mixed";
        return meta;
    }

    static void RequireModules(LoraWeights weights, string path)
    {
        if (weights.Modules.Count == 0) throw new ArgumentException($"{path}: refusing to write a LoRA with no modules");
    }
}
