using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Training.Loop;

/// <summary>Where <see cref="TrainableTransformer.SaveOutputs"/> wrote the results.</summary>
public sealed record TrainingOutputs(string? LoraFile, string? PeftFolder, string? TransformerFolder, string? EmaTransformerFolder)
{
    public IEnumerable<string> All => new[] { LoraFile, PeftFolder, TransformerFolder, EmaTransformerFolder }.OfType<string>();
}

/// <summary>
/// The transformer prepared for one training mode. LoRA: the base weights are frozen (in bf16 under
/// <c>--mixed_precision bf16</c>) and adapters in float32 are attached to the targeted Linear layers. Full: every
/// parameter trains in float32 except those matched by <c>--freeze</c>, which may be kept in bf16. Knows its trainable
/// weights by name (the names key checkpoints and optimizer state) and how to write the run's outputs.
/// </summary>
public sealed class TrainableTransformer : IDisposable
{
    /// <summary>Name of the adapter being trained.</summary>
    public const string AdapterName = "default";
    /// <summary>The LoRA file, named as diffusers' <c>save_lora_weights</c> names it.</summary>
    public const string LoraFileName = "pytorch_lora_weights.safetensors";
    public const string PeftFolderName = "peft";
    public const string TransformerFolderName = "transformer";
    public const string EmaTransformerFolderName = "transformer_ema";

    readonly LoraNetwork? _lora;

    TrainableTransformer(PixArtTransformer2DModel model, TrainingMode mode, LoraNetwork? lora, LoraConfig? loraConfig)
    {
        Model = model;
        Mode = mode;
        _lora = lora;
        LoraConfig = loraConfig;
        Trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        if (Trainable.Count == 0) throw new ArgumentException("nothing to train: every parameter is frozen (check --freeze)");
    }

    public PixArtTransformer2DModel Model { get; }
    public TrainingMode Mode { get; }

    /// <summary>Makes LoRA dropout draw from <paramref name="generator"/> (a stream of the run's saved randomness).</summary>
    public void UseDropoutGenerator(Generator generator)
    {
        if (_lora is not null) _lora.DropoutGenerator = generator;
    }
    public LoraConfig? LoraConfig { get; }
    /// <summary>The weights the optimizer updates, by parameter name.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Trainable { get; }
    public long TrainableCount => Trainable.Sum(p => p.Parameter.numel());
    public long TotalCount => Model.parameters().Sum(p => p.numel());

    /// <summary>
    /// Prepares <paramref name="model"/> (already loaded, in float32 or in the frozen dtype for LoRA) for <paramref name="plan"/>'s mode.
    /// </summary>
    public static TrainableTransformer Prepare(PixArtTransformer2DModel model, TrainingPlan plan)
    {
        var s = plan.Settings;
        model.GradientCheckpointing = s.GradientCheckpointing;
        ChunkedAttention.KeptProbabilityBudgetBytes = (long)s.AttentionProbabilitiesMb << 20;   // process-wide, like torch.backends flags
        if (plan.Mode == TrainingMode.Lora)
        {
            var targets = LoraTargets.Parse(s.LoraTargets);
            if (s.LoraBlocks is { Length: > 0 } blocks)
            {
                var chosen = LoraTargets.ParseBlocks(blocks);
                int n = model.Config.NumLayers;
                if (chosen.Any(b => b >= n)) throw new ArgumentException($"--lora_blocks {blocks}: the model has {n} blocks (0-{n - 1})");
                targets = targets with { Blocks = chosen };
            }
            var config = new LoraConfig
            {
                Rank = s.Rank, Alpha = s.LoraAlpha ?? s.Rank, Targets = targets, Dropout = s.LoraDropout, UseRsLora = s.UseRsLora,
                // Both reference LoRA scripts for PixArt initialise A with PEFT's "gaussian" N(0, 1/r²).
                Init = LoraInit.Gaussian, Seed = s.Seed,
            };
            var network = LoraNetwork.Attach(model);
            network.AddAdapter(AdapterName, config, plan.Device, plan.TrainableDtype);
            return new TrainableTransformer(model, TrainingMode.Lora, network, config);
        }

        FreezePatterns(model, s.Freeze);
        if (plan.FrozenDtype != ScalarType.Float32) CastFrozenLeaves(model, plan.FrozenDtype);
        return new TrainableTransformer(model, TrainingMode.Full, null, null);
    }

    /// <summary>The denoiser's prediction; micro-conditions are passed only to models that use them (α-MS).</summary>
    public Tensor Forward(Tensor latents, Tensor text, Tensor timesteps, Tensor mask, Tensor resolution, Tensor aspectRatio)
    {
        bool micro = Model.Config.ResolvedUseAdditionalConditions;
        return Model.forward(latents, text, timesteps, mask, micro ? resolution : null, micro ? aspectRatio : null);
    }

    /// <summary>What a checkpoint records to refuse resuming into a different setup.</summary>
    public JsonObject Describe(string baseModel) => new()
    {
        ["mode"] = Mode.ToString().ToLowerInvariant(),
        ["base_model"] = baseModel,
        ["trainable_parameters"] = TrainableCount,
        ["lora_rank"] = LoraConfig?.Rank,
        ["lora_alpha"] = LoraConfig?.Alpha,
        ["lora_targets"] = LoraConfig?.Targets.ToString(),
    };

    /// <summary>Files a checkpoint carries besides the resume state: in LoRA mode the adapter as a ready-to-use LoRA file.</summary>
    public void WriteCheckpointExtras(string folder)
    {
        if (_lora is null) return;
        using var weights = _lora.ExportAdapter(AdapterName);
        LoraFile.Write(Path.Combine(folder, LoraFileName), weights);
    }

    /// <summary>
    /// Writes the results into <paramref name="outputDir"/>: in LoRA mode <c>pytorch_lora_weights.safetensors</c> and the PEFT
    /// folder <c>peft/</c>; in full mode <c>transformer/</c> (diffusers layout) and, with an EMA, <c>transformer_ema/</c>.
    /// </summary>
    public TrainingOutputs SaveOutputs(string outputDir, IReadOnlyDictionary<string, string> metadata, ExponentialMovingAverage? ema)
    {
        if (_lora is not null)
        {
            using var weights = _lora.ExportAdapter(AdapterName, metadata);
            string file = Path.Combine(outputDir, LoraFileName), peft = Path.Combine(outputDir, PeftFolderName);
            LoraFile.Write(file, weights, metadata);
            LoraFile.WritePeftFolder(peft, weights, metadata);
            return new TrainingOutputs(file, peft, null, null);
        }
        string transformer = Path.Combine(outputDir, TransformerFolderName);
        AtomicFile.WriteDirectory(transformer, tmp => Model.SavePretrained(tmp));
        string? emaFolder = null;
        if (ema is not null)
        {
            emaFolder = Path.Combine(outputDir, EmaTransformerFolderName);
            ema.SwapIn();
            try { AtomicFile.WriteDirectory(emaFolder, tmp => Model.SavePretrained(tmp)); }
            finally { ema.SwapOut(); }
        }
        return new TrainingOutputs(null, null, transformer, emaFolder);
    }

    /// <summary>
    /// Freezes the parameters under modules matched by <paramref name="patterns"/>: a pattern matches a module whose
    /// dotted name equals it or ends with "." + it (as LoRA targets match), or, with a <c>re:</c> prefix, a regular
    /// expression over the parameter's full name. A pattern that matches nothing is an error.
    /// </summary>
    static void FreezePatterns(nn.Module model, IReadOnlyList<string> patterns)
    {
        var named = model.named_parameters().ToList();
        foreach (var raw in patterns.SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            int hits = 0;
            foreach (var (name, p) in named)
            {
                if (!FreezeMatches(raw, name)) continue;
                p.requires_grad = false;
                hits++;
            }
            if (hits == 0)
                throw new ArgumentException($"--freeze '{raw}' matches no parameter of the transformer; module names look like " +
                                            "pos_embed, caption_projection, adaln_single, transformer_blocks.0, attn2, ff, proj_out");
        }
    }

    internal static bool FreezeMatches(string pattern, string parameterName)
    {
        if (pattern.StartsWith("re:", StringComparison.Ordinal))
            return Regex.IsMatch(parameterName, "^(?:" + pattern[3..] + ")$", RegexOptions.CultureInvariant);
        // Every module path above the parameter: a.b.c.weight -> a, a.b, a.b.c.
        var parts = parameterName.Split('.');
        for (int n = 1; n < parts.Length; n++)
        {
            string module = string.Join('.', parts, 0, n);
            if (module == pattern || module.EndsWith("." + pattern, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>
    /// Moves every leaf module whose parameters are all frozen to <paramref name="dtype"/>. Frozen tensors held directly
    /// by a non-leaf module (the small scale_shift_tables) stay in float32: converting them would need the owner's field
    /// swapped too, for a few kilobytes.
    /// </summary>
    static void CastFrozenLeaves(nn.Module model, ScalarType dtype)
    {
        foreach (var (_, module) in model.named_modules())
        {
            if (module.named_children().Any()) continue;
            var ps = module.parameters().ToList();
            if (ps.Count == 0 || ps.Any(p => p.requires_grad)) continue;
            module.to(dtype);
        }
    }

    public void Dispose()
    {
        _lora?.Dispose();
        Model.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Mode.ToString().ToLowerInvariant()} mode: {TrainableCount:N0} of {TotalCount:N0} parameters train");
}
