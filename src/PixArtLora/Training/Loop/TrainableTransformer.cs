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
/// parameter trains except those matched by <c>--freeze</c>; under <c>--mixed_precision bf16</c> the model holds and
/// computes in bf16 while the optimizer updates float32 master copies (<see cref="Trainable"/>), which is what
/// autocast achieves in the reference scripts; without it, and under fp16 (which would need loss scaling), the
/// trainable weights are float32 and frozen ones may be kept in the half dtype. Knows its trainable weights by name
/// (the names key checkpoints and optimizer state) and how to write the run's outputs.
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
    /// <summary>Full mode under bf16: each float32 master and the model's bf16 parameter it feeds; null otherwise.</summary>
    readonly List<(Parameter Master, Parameter Working)>? _masters;

    TrainableTransformer(PixArtTransformer2DModel model, TrainingMode mode, LoraNetwork? lora, LoraConfig? loraConfig,
        List<(string Name, Parameter Master, Parameter Working)>? masters = null)
    {
        Model = model;
        Mode = mode;
        _lora = lora;
        LoraConfig = loraConfig;
        _masters = masters?.Select(m => (m.Master, m.Working)).ToList();
        Trainable = masters is not null
            ? masters.Select(m => (m.Name, m.Master)).ToList()
            : model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        if (Trainable.Count == 0) throw new ArgumentException("nothing to train: every parameter is frozen (check --freeze)");
    }

    /// <summary>Whether the optimizer's weights are float32 masters of a bf16 model (full mode under --mixed_precision bf16).</summary>
    public bool HasMasterWeights => _masters is not null;

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
        if (plan.FrozenDtype == ScalarType.BFloat16) return WithMasterWeights(model);
        if (plan.FrozenDtype != ScalarType.Float32) CastFrozenLeaves(model, plan.FrozenDtype);
        return new TrainableTransformer(model, TrainingMode.Full, null, null);
    }

    /// <summary>
    /// Keeps a float32 copy of every trainable parameter of the (float32) <paramref name="model"/>, then casts the model to
    /// bf16: forward and backward run in bf16 — measured on the 2-core CPU, a full Σ-512 step at 512 px with
    /// checkpointing and AdamW took 39–40 s with the model in float32 and 14–15 s this way — while updates accumulate in
    /// float32, where a bf16 weight would round away steps smaller than 2⁻⁸ of its value.
    /// </summary>
    static TrainableTransformer WithMasterWeights(PixArtTransformer2DModel model)
    {
        var copies = new List<(string Name, Parameter Master)>();
        try
        {
            using (no_grad())
                foreach (var (name, p) in model.named_parameters().Where(p => p.parameter.requires_grad))
                    copies.Add((name, new Parameter(p.detach().to(ScalarType.Float32, copy: true), requires_grad: true)));
            model.to(ScalarType.BFloat16);
            var trainable = copies.Select(c => c.Name).ToHashSet();
            var working = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in working) p.requires_grad = trainable.Contains(name);   // as before the cast
            var masters = copies.Select(c => (c.Name, c.Master, working[c.Name])).ToList();
            return new TrainableTransformer(model, TrainingMode.Full, null, null, masters);
        }
        catch
        {
            foreach (var (_, master) in copies) master.Dispose();
            throw;
        }
    }

    /// <summary>
    /// After a backward pass (each micro-batch): adds the bf16 model's gradients to the float32 masters' and clears the
    /// model's, so accumulation over micro-batches sums in float32. A no-op without master weights.
    /// </summary>
    public void CollectGradients()
    {
        if (_masters is null) return;
        using var noGrad = no_grad();
        foreach (var (master, working) in _masters)
        {
            if (working.grad is not { } g) continue;
            if (master.grad is { } acc) acc.add_(g);
            else master.grad = g.to(ScalarType.Float32);
            working.grad = null;
        }
    }

    /// <summary>
    /// Gives the bf16 model the masters' current values: after each optimizer step, after resuming, and around EMA
    /// swaps (which act on the masters). A no-op without master weights.
    /// </summary>
    public void SyncWorkingWeights()
    {
        if (_masters is null) return;
        using var noGrad = no_grad();
        foreach (var (master, working) in _masters) working.copy_(master);
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
        AtomicFile.WriteDirectory(transformer, tmp => Model.SavePretrained(tmp, replacements: MasterTensors()));
        string? emaFolder = null;
        if (ema is not null)
        {
            emaFolder = Path.Combine(outputDir, EmaTransformerFolderName);
            ema.SwapIn();
            try { AtomicFile.WriteDirectory(emaFolder, tmp => Model.SavePretrained(tmp, replacements: MasterTensors())); }
            finally { ema.SwapOut(); }
        }
        return new TrainingOutputs(null, null, transformer, emaFolder);
    }

    /// <summary>The float32 masters by parameter name, which the saved model takes instead of its bf16 copies; null without them.</summary>
    IReadOnlyDictionary<string, Tensor>? MasterTensors() =>
        _masters is null ? null : Trainable.ToDictionary(t => t.Name, t => (Tensor)t.Parameter);

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
        if (_masters is not null)
            foreach (var (master, _) in _masters) { master.grad?.Dispose(); master.Dispose(); }
        Model.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Mode.ToString().ToLowerInvariant()} mode: {TrainableCount:N0} of {TotalCount:N0} parameters train{(_masters is null ? "" : " (bf16 model, float32 master weights)")}");
}
