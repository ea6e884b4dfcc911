using System.Globalization;
using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// Reads any supported LoRA file (see <see cref="LoraKeyNames"/>, <see cref="PixArtOriginalNames"/>) into diffusers module
/// names, checked against the model's Linear layers. Every key must land somewhere; otherwise the error lists the first
/// keys that did not, and the model they were matched against.
/// </summary>
internal static class LoraFileReader
{
    sealed class RawModule
    {
        public string? Down, Up, Alpha;
    }

    sealed record Placement(string Module, int Part, int Parts);

    const int ListedKeys = 8;

    public static LoraWeights Read(string path, LoraTargetCatalog model, bool strict, string? explicitConfig = null)
    {
        var (file, configPath) = Locate(path);
        if (explicitConfig != null)
            configPath = File.Exists(explicitConfig) ? explicitConfig : throw new FileNotFoundException($"adapter config not found: {explicitConfig}", explicitConfig);
        var config = configPath != null ? AdapterConfigJson.Read(configPath) : null;
        using var st = SafetensorsFile.Open(file);
        var warnings = new List<string>();

        // 1. Group tensors by module key; refuse adapter kinds that are not LoRA.
        var raw = new SortedDictionary<string, RawModule>(StringComparer.Ordinal);
        var unrecognised = new List<string>();
        var adapterNames = new HashSet<string>();
        int textEncoderKeys = 0;
        foreach (var key in st.Entries.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            if (LoraKeyNames.IsTextEncoderKey(key)) { textEncoderKeys++; continue; }
            var parsed = LoraKeyNames.Parse(key, out var unsupported, out var adapterName);
            if (unsupported != null)
                throw new LoraFormatException($"{file}: key '{key}' belongs to a {unsupported} adapter; only plain LoRA (A/B or down/up factors) is supported");
            if (parsed is not { } p) { unrecognised.Add(key); continue; }
            if (adapterName != null) adapterNames.Add(adapterName);
            var m = raw.TryGetValue(p.Module, out var existing) ? existing : raw[p.Module] = new RawModule();
            ref string? slot = ref p.Role == LoraTensorRole.Down ? ref m.Down : ref (p.Role == LoraTensorRole.Up ? ref m.Up : ref m.Alpha);
            if (slot != null) throw new LoraFormatException($"{file}: '{key}' and '{slot}' both give the {p.Role} of module '{p.Module}'");
            slot = key;
        }
        if (textEncoderKeys > 0) warnings.Add($"{file}: ignored {textEncoderKeys} text-encoder tensors (a PixArt LoRA adapts the transformer only)");
        if (adapterNames.Count > 1)
            throw new LoraFormatException($"{file}: holds several adapters ({string.Join(", ", adapterNames.Order())}); save them as separate files");
        var incomplete = raw.Where(r => r.Value.Down == null || r.Value.Up == null).Select(r => r.Key).ToList();
        if (incomplete.Count > 0)
            throw new LoraFormatException($"{file}: {incomplete.Count} modules lack their A (down) or B (up) factor: {List(incomplete)}");
        if (raw.Count == 0)
            throw new LoraFormatException(
                $"{file}: no LoRA tensors found (expected keys like 'transformer.<module>.lora_A.weight' or '<module>.lora_down.weight'); " +
                $"first keys: {List(st.Entries.Keys.Order(StringComparer.Ordinal).ToList())}");

        // 2. Place each module key on the model's layers.
        var unmatched = new List<string>(unrecognised);
        var misfits = new List<string>();
        var modules = new List<KeyValuePair<string, LoraModule>>();
        bool assumedAlpha = false;
        try
        {
            foreach (var (moduleKey, r) in raw)
            {
                var placement = Place(moduleKey, model);
                if (placement == null) { unmatched.Add(r.Down!); continue; }
                var down = st.Get(r.Down!);
                var up = st.Get(r.Up!);
                string? misfit = CheckShapes(file, r, down.Shape, up.Shape, placement, model);
                if (misfit != null) { misfits.Add(misfit); continue; }

                double? fileAlpha = r.Alpha != null ? ReadScalar(st, r.Alpha) : null;
                if (fileAlpha == 0) fileAlpha = null; // kohya convention: alpha 0 (or none) means alpha = rank
                using var downT = st.Read(r.Down!);
                using var upT = st.Read(r.Up!);
                foreach (var (part, factors) in Split(placement, downT, upT))
                {
                    long rank = factors.Down.shape[0];
                    double alpha;
                    if (fileAlpha is { } a) alpha = a;
                    else if (config?.AlphaFor(part) is { } ca) alpha = config.UseRsLora ? ca * Math.Sqrt(rank) : ca;
                    else if (MetadataAlpha(st) is { } ma) alpha = ma;
                    else { alpha = rank; assumedAlpha = true; }
                    modules.Add(new(part, new LoraModule(factors.Down, factors.Up, alpha)));
                }
            }

            if (modules.Count == 0 || (strict && (unmatched.Count > 0 || misfits.Count > 0)))
                throw new LoraFormatException(MismatchMessage(file, raw.Count, modules.Count, unmatched, misfits, model));
        }
        catch
        {
            foreach (var m in modules) m.Value.Dispose();
            throw;
        }
        if (unmatched.Count > 0) warnings.Add($"{file}: {unmatched.Count} keys match no layer of {model.Description} and were skipped: {List(unmatched)}");
        if (misfits.Count > 0) warnings.Add($"{file}: {misfits.Count} modules do not fit and were skipped: {string.Join("; ", misfits.Take(ListedKeys))}");
        if (assumedAlpha)
            warnings.Add($"{file}: no alpha in the file{(configPath == null ? " and no adapter_config.json beside it" : $" or in {configPath}")}; assuming alpha = rank (scale 1)");

        var metadata = new Dictionary<string, string>(st.Metadata);
        if (config?.BaseModel != null) metadata.TryAdd(LoraFile.MetadataBaseModel, config.BaseModel);
        return new LoraWeights(modules, metadata, path, warnings);
    }

    /// <summary>A folder is a PEFT adapter (adapter_model.safetensors + adapter_config.json); a file may have an adapter_config.json beside it.</summary>
    static (string File, string? Config) Locate(string path)
    {
        if (Directory.Exists(path))
        {
            string model = Path.Combine(path, "adapter_model.safetensors");
            string config = Path.Combine(path, "adapter_config.json");
            if (!File.Exists(model))
            {
                var others = Directory.GetFiles(path, "*.safetensors");
                if (File.Exists(Path.Combine(path, "adapter_model.bin")))
                    throw new LoraFormatException($"{path}: holds adapter_model.bin (a pickle); only adapter_model.safetensors is read — re-save it with safe_serialization=True");
                if (others.Length != 1)
                    throw new LoraFormatException($"{path}: no adapter_model.safetensors in this folder{(others.Length > 1 ? $" and several other .safetensors files ({string.Join(", ", others.Select(Path.GetFileName))}); name the file" : "")}");
                model = others[0];
            }
            return (model, File.Exists(config) ? config : null);
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"LoRA file not found: {path}", path);
        string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "adapter_config.json");
        return (path, File.Exists(beside) ? beside : null);
    }

    /// <summary>Where a module key of the file lands: a layer of the model, or a fused original layer split over several.</summary>
    static Placement[]? Place(string moduleKey, LoraTargetCatalog model)
    {
        foreach (var candidate in LoraKeyNames.WithoutPrefixes(moduleKey))
        {
            if (model.Contains(candidate)) return new[] { new Placement(candidate, 0, 1) };
            if (model.TryResolveUnderscoreName(candidate, out var name)) return new[] { new Placement(name, 0, 1) };
            if (PixArtOriginalNames.ToDiffusers(candidate) is { } targets && targets.All(model.Contains))
                return targets.Select((t, i) => new Placement(t, i, targets.Length)).ToArray();
        }
        return null;
    }

    static string? CheckShapes(string file, RawModule r, long[] down, long[] up, Placement[] placement, LoraTargetCatalog model)
    {
        string Shape(long[] s) => "[" + string.Join(", ", s) + "]";
        var shapes = placement.Select(p => { model.TryGetShape(p.Module, out var s); return s; }).ToList();
        long outTotal = shapes.Sum(s => s.Out);
        long inFeatures = shapes[0].In;
        string target = placement.Length == 1 ? $"'{placement[0].Module}'" : $"'{string.Join("' + '", placement.Select(p => p.Module))}' (fused)";
        string expected = $"expected A [r, {inFeatures}] and B [{outTotal}, r] for {target} of {model.Description}";
        if (down.Length != 2 || up.Length != 2 || shapes.Any(s => s.In != inFeatures) || down[1] != inFeatures || up[0] != outTotal)
            return $"{r.Down}: A {Shape(down)}, B {Shape(up)} in {file}; {expected}";
        int parts = placement.Length;
        bool product = up[1] == down[0];
        bool chunked = parts > 1 && down[0] == parts * up[1];
        if (!product && !chunked)
            return $"{r.Down}: A {Shape(down)} and B {Shape(up)} in {file} have different ranks; {expected}";
        if (parts > 1 && shapes.Any(s => s.Out != shapes[0].Out))
            return $"{r.Down}: fused layer over modules of different widths; {expected}";
        return null;
    }

    /// <summary>
    /// The factors of each placed module. A fused original layer comes in two layouts: a true LoRA of the fused
    /// weight (A [r, in] shared, B [n·out, r] split by rows), or per-part factors stacked along rows (A [n·r, in],
    /// B [n·out, r]), as ComfyUI_ExtraModels concatenates diffusers adapters; each part then has rank r.
    /// </summary>
    static IEnumerable<(string Module, (Tensor Down, Tensor Up) Factors)> Split(Placement[] placement, Tensor down, Tensor up)
    {
        int parts = placement.Length;
        if (parts == 1)
        {
            yield return (placement[0].Module, (down.clone(), up.clone()));
            yield break;
        }
        long outPart = up.shape[0] / parts;
        bool product = up.shape[1] == down.shape[0];
        long rank = up.shape[1];
        foreach (var p in placement)
        {
            var b = up.narrow(0, p.Part * outPart, outPart).clone();
            var a = product ? down.clone() : down.narrow(0, p.Part * rank, rank).clone();
            yield return (p.Module, (a, b));
        }
    }

    static double ReadScalar(SafetensorsFile st, string key)
    {
        var e = st.Get(key);
        if (e.ElementCount != 1) throw new LoraFormatException($"{st.Path}: '{key}' has shape [{string.Join(", ", e.Shape)}], expected a single number");
        using var t = st.Read(key);
        return t.to(float64).reshape(-1)[0].item<double>();
    }

    static double? MetadataAlpha(SafetensorsFile st)
    {
        foreach (var k in new[] { LoraFile.MetadataAlpha, "ss_network_alpha" })
            if (st.Metadata.TryGetValue(k, out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var a) && a > 0)
                return a;
        return null;
    }

    static string MismatchMessage(string file, int fileModules, int placed, List<string> unmatched, List<string> misfits, LoraTargetCatalog model)
    {
        var parts = new List<string>();
        if (placed == 0 && misfits.Count == 0) parts.Add($"{file}: none of its {fileModules} modules match a layer of {model.Description}");
        else parts.Add($"{file}: does not fit {model.Description}");
        if (unmatched.Count > 0) parts.Add($"{unmatched.Count} keys match no layer, first: {List(unmatched)}");
        if (misfits.Count > 0) parts.Add($"{misfits.Count} modules have shapes that do not fit: {string.Join("; ", misfits.Take(3))}{(misfits.Count > 3 ? "; …" : "")}");
        parts.Add($"the model's layers are named like: {model.ExampleNames()}");
        return string.Join("; ", parts);
    }

    static string List(IReadOnlyList<string> keys) =>
        string.Join(", ", keys.Take(ListedKeys)) + (keys.Count > ListedKeys ? $" … and {keys.Count - ListedKeys} more" : "");
}
