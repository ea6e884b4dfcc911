using System.Globalization;
using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>How well one module's weight change is captured: the share of ‖ΔW‖²_F kept by the rank-k truncation.</summary>
public sealed record ModuleExtraction(string Module, long Rank, double RetainedEnergy, double DeltaNorm);

/// <summary>The result of <see cref="LoraExtract.Extract(SafetensorsCheckpoint, SafetensorsCheckpoint, int, LoraTargets?, Device?, Action{string}?)"/>.</summary>
public sealed class LoraExtraction : IDisposable
{
    internal LoraExtraction(LoraWeights weights, IReadOnlyList<ModuleExtraction> modules, IReadOnlyList<string> unchanged, IReadOnlyList<string> unrepresented)
    {
        Weights = weights; Modules = modules; Unchanged = unchanged; Unrepresented = unrepresented;
    }

    /// <summary>The adapter (alpha = rank of each module, so the scale is 1).</summary>
    public LoraWeights Weights { get; }

    /// <summary>Per targeted module: rank kept, retained energy, ‖ΔW‖_F.</summary>
    public IReadOnlyList<ModuleExtraction> Modules { get; }

    /// <summary>Targeted modules whose weight did not change at all (left out of the adapter).</summary>
    public IReadOnlyList<string> Unchanged { get; }

    /// <summary>Tensors that changed but a LoRA cannot carry (biases, norms, untargeted layers), with their largest change.</summary>
    public IReadOnlyList<string> Unrepresented { get; }

    /// <summary>Retained energy over all modules: Σ kept σ² / Σ σ².</summary>
    public double TotalRetainedEnergy
    {
        get
        {
            double total = Modules.Sum(m => m.DeltaNorm * m.DeltaNorm);
            return total == 0 ? 1 : Modules.Sum(m => m.RetainedEnergy * m.DeltaNorm * m.DeltaNorm) / total;
        }
    }

    public void Dispose() => Weights.Dispose();
}

/// <summary>
/// Extracting a LoRA from a full fine-tune: for each targeted Linear, the truncated SVD of ΔW = W_tuned − W_base,
/// ΔW ≈ U_k Σ_k V_kᵀ, split as B = U_k √Σ_k and A = √Σ_k V_kᵀ with alpha = k (scale 1). The truncation is the best
/// rank-k approximation in Frobenius norm (Eckart–Young), so it is exact when k ≥ rank(ΔW).
/// </summary>
public static class LoraExtract
{
    /// <summary>Factors of the best rank-<paramref name="rank"/> approximation of <paramref name="delta"/> [out, in] and its retained energy.</summary>
    public static (LoraModule Module, double RetainedEnergy) ExtractModule(Tensor delta, int rank, Device? device = null)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"rank must be positive, got {rank}");
        if (delta.dim() != 2) throw new ArgumentException($"expected a 2-D weight difference, got [{string.Join(", ", delta.shape)}]");
        using var scope = NewDisposeScope();
        var d = delta.to(float32, device ?? delta.device);
        var (u, s, vh) = linalg.svd(d, fullMatrices: false);
        long k = Math.Min(rank, s.shape[0]);
        var sq = s.narrow(0, 0, k).sqrt();
        var up = u.narrow(1, 0, k).mul(sq.unsqueeze(0));
        var down = vh.narrow(0, 0, k).mul(sq.unsqueeze(1));
        var energy = s.square();
        double total = energy.sum().item<float>();
        double kept = energy.narrow(0, 0, k).sum().item<float>();
        var module = new LoraModule(down.cpu().contiguous().MoveToOuterDisposeScope(), up.cpu().contiguous().MoveToOuterDisposeScope(), k);
        return (module, total == 0 ? 1 : Math.Min(1, kept / total));
    }

    /// <summary>
    /// Extracts a rank-<paramref name="rank"/> LoRA of <paramref name="tuned"/> relative to <paramref name="baseModel"/> on the layers
    /// <paramref name="targets"/> selects (default: all Linear layers), reporting each module's retained energy.
    /// </summary>
    public static LoraExtraction Extract(SafetensorsCheckpoint baseModel, SafetensorsCheckpoint tuned, int rank, LoraTargets? targets = null,
        Device? device = null, Action<string>? log = null)
    {
        var baseCatalog = LoraTargetCatalog.FromCheckpoint(baseModel);
        var tunedCatalog = LoraTargetCatalog.FromCheckpoint(tuned);
        var mismatched = baseCatalog.Linears.Where(kv => tunedCatalog.TryGetShape(kv.Key, out var s) && s != kv.Value).Select(kv => kv.Key).ToList();
        if (mismatched.Count > 0)
            throw new LoraFormatException($"{tuned.Source} is not a fine-tune of {baseModel.Source}: layers differ in shape, e.g. {string.Join(", ", mismatched.Take(5))}");
        var modules = baseCatalog.Linears.Keys.Where(tunedCatalog.Contains)
            .Where(n => targets == null || targets.Matches(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (modules.Count == 0)
            throw new LoraFormatException($"no Linear layer of {baseModel.Source} is selected by targets '{targets}' and present in {tuned.Source}");

        var extracted = new List<KeyValuePair<string, LoraModule>>();
        var report = new List<ModuleExtraction>();
        var unchanged = new List<string>();
        try
        {
            foreach (var name in modules)
            {
                using var scope = NewDisposeScope();
                var delta = tuned.Read(name + ".weight").to(float32).sub(baseModel.Read(name + ".weight").to(float32));
                double norm = delta.norm().item<float>();
                if (norm == 0) { unchanged.Add(name); continue; }
                var (m, energy) = ExtractModule(delta, rank, device);
                extracted.Add(new(name, m));
                report.Add(new ModuleExtraction(name, m.Rank, energy, norm));
                log?.Invoke($"{name}: rank {m.Rank}, retained energy {energy:P2}");
            }
            if (extracted.Count == 0)
                throw new LoraFormatException($"{tuned.Source} equals {baseModel.Source} on every targeted layer; there is nothing to extract");
        }
        catch
        {
            foreach (var m in extracted) m.Value.Dispose();
            throw;
        }

        var targeted = new HashSet<string>(modules.Select(m => m + ".weight"), StringComparer.Ordinal);
        var unrepresented = new List<string>();
        foreach (var key in tuned.Keys.Order(StringComparer.Ordinal))
        {
            if (targeted.Contains(key)) continue;
            if (!baseModel.Contains(key)) { unrepresented.Add($"{key} (not in the base)"); continue; }
            using var scope = NewDisposeScope();
            var a = tuned.Read(key);
            var b = baseModel.Read(key);
            if (!a.shape.SequenceEqual(b.shape)) { unrepresented.Add($"{key} (shape differs)"); continue; }
            double maxDiff = a.to(float64).sub(b.to(float64)).abs().max().item<double>();
            if (maxDiff > 0) unrepresented.Add($"{key} (max |change| {maxDiff.ToString("G3", CultureInfo.InvariantCulture)})");
        }

        var metadata = new Dictionary<string, string>
        {
            [LoraFile.MetadataTargets] = targets?.ToString() ?? "all-linear",
            ["extracted_from"] = tuned.Source,
            [LoraFile.MetadataBaseModel] = baseModel.Source,
        };
        return new LoraExtraction(new LoraWeights(extracted, metadata, $"extracted from {tuned.Source}"), report, unchanged, unrepresented);
    }
}
