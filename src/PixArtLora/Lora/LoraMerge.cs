using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>One adapter to merge and how strongly (1 = as trained).</summary>
public sealed record LoraMergeSource(string Path, double Strength = 1.0)
{
    /// <summary>Parses <c>file.safetensors[:strength]</c>; a trailing <c>:number</c> is the strength.</summary>
    public static LoraMergeSource Parse(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && double.TryParse(spec[(colon + 1)..], System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var s))
            return new LoraMergeSource(spec[..colon], s);
        return new LoraMergeSource(spec);
    }
}

/// <summary>What a merge did.</summary>
public sealed record LoraMergeReport(string Output, IReadOnlyList<string> Files, int TensorsWritten, int WeightsChanged, IReadOnlyList<string> Warnings);

/// <summary>
/// Merging adapters into base weights: W' = W + Σ strength · (alpha / r) · B·A, computed in fp32 and stored in W's dtype.
/// <see cref="MergeCheckpoint"/> works on a checkpoint's tensors by key, one tensor at a time, so it needs no model
/// and its memory stays near one tensor plus the adapters.
/// </summary>
public static class LoraMerge
{
    /// <summary>diffusers' default <c>max_shard_size</c> ("10GB").</summary>
    public const long DefaultMaxShardBytes = 10_000_000_000;

    /// <summary>Parses a shard size the way diffusers' <c>max_shard_size</c> reads: <c>10GB</c> (10⁹ bytes each), <c>500MB</c>, <c>2GiB</c>, or bytes.</summary>
    public static long ParseSize(string text)
    {
        var m = System.Text.RegularExpressions.Regex.Match(text.Trim(), @"^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        if (!m.Success) throw new ArgumentException($"size '{text}' is not a number of bytes or a size like 10GB, 500MB, 2GiB");
        double n = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        string unit = m.Groups[2].Value.ToUpperInvariant();
        double factor = unit switch
        {
            "" or "B" => 1, "KB" => 1e3, "MB" => 1e6, "GB" => 1e9, "TB" => 1e12,
            "KIB" => 1L << 10, "MIB" => 1L << 20, "GIB" => 1L << 30, _ => 1L << 40,
        };
        long bytes = (long)(n * factor);
        return bytes > 0 ? bytes : throw new ArgumentException($"size '{text}' must be positive");
    }

    /// <summary><paramref name="weight"/> plus the updates, computed in fp32, returned as a new tensor of <paramref name="weight"/>'s dtype.</summary>
    public static Tensor MergeWeight(Tensor weight, IEnumerable<(LoraModule Module, double Strength)> updates)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Out-of-place: for an fp32 weight, to(float32) shares the caller's storage. addmm fuses W + s·B·A without
        // materialising the [out, in] update separately, which keeps the merge's peak memory at about two fp32 copies of W.
        var w = weight.to(float32);
        foreach (var (m, strength) in updates)
        {
            if (m.OutFeatures != weight.shape[0] || m.InFeatures != weight.shape[1])
                throw new ArgumentException($"LoRA update [{m.OutFeatures}, {m.InFeatures}] does not fit weight [{string.Join(", ", weight.shape)}]");
            var up = m.Up.to(float32, weight.device);
            var down = m.Down.to(float32, weight.device);
            w = addmm(w, up, down, beta: 1, alpha: (float)(m.Scale * strength));
        }
        return w.to(weight.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Writes <paramref name="baseFolder"/>'s transformer with <paramref name="loras"/> merged into <paramref name="outputFolder"/> in
    /// diffusers layout (config.json + <c>diffusion_pytorch_model</c> safetensors, sharded with an index above
    /// <paramref name="maxShardBytes"/>). The folder appears only when complete. Every adapter must fit the base (see <see cref="LoraFile.Read"/>).
    /// </summary>
    /// <param name="fetch">Turns a registry variant's transformer into a local folder when <paramref name="baseFolder"/> names one (see <see cref="TransformerFolder.Resolve"/>).</param>
    public static LoraMergeReport MergeCheckpoint(string baseFolder, IReadOnlyList<LoraMergeSource> loras, string outputFolder,
        long maxShardBytes = DefaultMaxShardBytes, Action<string>? log = null, Func<Registry.HubComponent, string>? fetch = null)
    {
        if (loras.Count == 0) throw new ArgumentException("no LoRA given to merge");
        string transformer = TransformerFolder.Resolve(baseFolder, fetch);
        string outFull = Path.GetFullPath(outputFolder).TrimEnd(Path.DirectorySeparatorChar);
        string baseFull = Path.GetFullPath(transformer).TrimEnd(Path.DirectorySeparatorChar);
        if (outFull == baseFull || baseFull.StartsWith(outFull + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"--output {outputFolder} would replace the base model it reads from ({transformer}); choose another folder");

        using var ckpt = SafetensorsCheckpoint.Open(transformer, TransformerFolder.WeightsBaseName);
        var catalog = LoraTargetCatalog.FromCheckpoint(ckpt, TransformerFolder.Describe(transformer));
        var baseVariant = TransformerFolder.Identify(transformer);
        var adapters = new List<(LoraWeights Weights, double Strength)>();
        var warnings = new List<string>();
        try
        {
            foreach (var src in loras)
            {
                var w = LoraFile.Read(src.Path, catalog);
                adapters.Add((w, src.Strength));
                warnings.AddRange(w.Warnings);
                if (TransformerFolder.BaseModelMismatch(w, baseVariant) is { } mismatch) warnings.Add(mismatch);
                log?.Invoke($"{src.Path}: {w.Modules.Count} modules, rank {w.UniformRank?.ToString() ?? "mixed"}, strength {src.Strength}");
            }
            var updates = new Dictionary<string, List<(LoraModule, double)>>(StringComparer.Ordinal);
            foreach (var (w, strength) in adapters)
                foreach (var (module, m) in w.Modules)
                {
                    if (!updates.TryGetValue(module + ".weight", out var list)) updates[module + ".weight"] = list = new();
                    list.Add((m, strength));
                }

            var sources = ckpt.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(key =>
            {
                var e = ckpt.Entry(key);
                return new TensorSource(key, e.ScalarType, e.Shape, () =>
                {
                    var t = ckpt.Read(key);
                    return updates.TryGetValue(key, out var u) ? MergeWeight(t, u) : t;
                });
            }).ToList();

            IReadOnlyList<string> files = Array.Empty<string>();
            AtomicFile.WriteDirectory(outFull, tmp =>
            {
                File.Copy(Path.Combine(transformer, "config.json"), Path.Combine(tmp, "config.json"));
                var written = SafetensorsWriter.SaveSharded(tmp, TransformerFolder.WeightsBaseName, sources, maxShardBytes,
                    new Dictionary<string, string> { ["format"] = "pt" });
                files = written.Select(f => Path.Combine(outFull, Path.GetFileName(f))).Prepend(Path.Combine(outFull, "config.json")).ToList();
            });
            return new LoraMergeReport(outFull, files, sources.Count, updates.Count, warnings);
        }
        finally
        {
            foreach (var (w, _) in adapters) w.Dispose();
        }
    }
}
