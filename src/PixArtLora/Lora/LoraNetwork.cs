using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// The LoRA adapters attached to one model: finds the targeted <see cref="Linear"/> layers by name, wraps each in a
/// <see cref="LoraLinear"/>, and manages named adapters over all of them — several at once, each with its own strength,
/// adjustable at inference, removable, exportable to a file, or merged into the base weights.
/// </summary>
/// <remarks>
/// The model's Linear layers stay in place; adapters act through forward hooks, which TorchSharp runs when a layer is
/// invoked with <c>call()</c> (as <c>Sequential</c> does), not with <c>forward()</c>. Load the base weights before
/// attaching: afterwards the model's state also holds the <c>lora_A</c>/<c>lora_B</c> tensors.
/// </remarks>
public sealed class LoraNetwork : IDisposable
{
    readonly SortedDictionary<string, LoraLinear> _layers = new(StringComparer.Ordinal);
    readonly Dictionary<string, AdapterInfo> _adapters = new(StringComparer.Ordinal);
    Dictionary<Parameter, bool>? _frozenFrom;

    sealed record AdapterInfo(IReadOnlyList<string> Modules, IReadOnlyDictionary<string, string> Metadata);

    /// <summary>The model the adapters are attached to.</summary>
    public nn.Module Model { get; }

    LoraNetwork(nn.Module model) { Model = model; }

    /// <summary>Prepares <paramref name="model"/> for adapters (nothing changes until one is added).</summary>
    public static LoraNetwork Attach(nn.Module model) => new(model);

    /// <summary>
    /// The generator adapter dropout draws from while training (see <see cref="LoraLinear.DropoutGenerator"/>), for every
    /// wrapped layer, present and future; null uses the global torch generator.
    /// </summary>
    public Generator? DropoutGenerator
    {
        get => _dropoutGenerator;
        set
        {
            _dropoutGenerator = value;
            foreach (var layer in _layers.Values) layer.DropoutGenerator = value;
        }
    }
    Generator? _dropoutGenerator;

    /// <summary>The wrapped layers by full module name.</summary>
    public IReadOnlyDictionary<string, LoraLinear> Layers => _layers;

    /// <summary>Adapter names in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => _adapters.Keys.ToList();

    /// <summary>The model's Linear layers as a catalog, for matching files and targets.</summary>
    public LoraTargetCatalog Catalog(string? description = null) => LoraTargetCatalog.FromModule(Model, description);

    /// <summary>
    /// Adds a new trainable adapter on every Linear that <paramref name="config"/>'s targets select, and freezes every other
    /// parameter of the model (restored by <see cref="Unload"/>). Returns the adapted module names.
    /// </summary>
    public IReadOnlyList<string> AddAdapter(string name, LoraConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        config.Validate();
        RequireNewName(name);
        var targets = FindTargets(config.Targets);
        using var generator = new Generator((ulong)config.Seed);
        foreach (var (moduleName, linear) in targets)
            LayerFor(moduleName, linear).AddAdapter(name, config, device, dtype, generator);
        var meta = new Dictionary<string, string>
        {
            [LoraFile.MetadataRank] = config.Rank.ToString(CultureInfo.InvariantCulture),
            [LoraFile.MetadataAlpha] = config.Alpha.ToString("R", CultureInfo.InvariantCulture),
            [LoraFile.MetadataTargets] = config.Targets.ToString(),
            [LoraFile.MetadataRsLora] = config.UseRsLora ? "true" : "false",
        };
        _adapters[name] = new AdapterInfo(targets.Select(t => t.Name).ToList(), meta);
        FreezeBase();
        foreach (var p in AdapterParameters(name)) p.requires_grad = true;
        return _adapters[name].Modules;
    }

    /// <summary>
    /// Adds an adapter read from a file (see <see cref="LoraFile.Read"/>) at <paramref name="strength"/> (1 = as trained).
    /// Its parameters are frozen unless <paramref name="trainable"/> (to resume training).
    /// </summary>
    public void LoadAdapter(string name, LoraWeights weights, double strength = 1.0, bool trainable = false,
        Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        RequireNewName(name);
        var linears = LinearsByName();
        var missing = weights.Modules.Keys.Where(k => !linears.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new LoraFormatException($"{weights.Source}: {missing.Count} modules are not Linear layers of this model: {string.Join(", ", missing.Take(8))}");
        try
        {
            foreach (var (moduleName, m) in weights.Modules)
            {
                var layer = LayerFor(moduleName, linears[moduleName]);
                layer.SetAdapter(name, m.Down, m.Up, m.Alpha, device: device, dtype: dtype);
                layer.SetStrength(name, strength);
            }
        }
        catch
        {
            foreach (var layer in _layers.Values.Where(l => l.HasAdapter(name))) layer.RemoveAdapter(name);
            DropEmptyLayers();
            throw;
        }
        _adapters[name] = new AdapterInfo(weights.Modules.Keys.ToList(), weights.Metadata);
        if (trainable) FreezeBase();
        foreach (var p in AdapterParameters(name)) p.requires_grad = trainable;
    }

    /// <summary>Sets how strongly an adapter applies (1 = as trained, 0 = off, negative = subtract).</summary>
    public void SetStrength(string name, double strength)
    {
        foreach (var layer in LayersOf(name)) layer.SetStrength(name, strength);
    }

    /// <summary>Removes one adapter; layers left without adapters get their plain Linear back.</summary>
    public void RemoveAdapter(string name)
    {
        foreach (var layer in LayersOf(name)) layer.RemoveAdapter(name);
        _adapters.Remove(name);
        DropEmptyLayers();
    }

    /// <summary>Parameters of one adapter (A and B of every layer), in module name order.</summary>
    public IEnumerable<Parameter> AdapterParameters(string name)
    {
        foreach (var layer in LayersOf(name))
        {
            var (a, b) = layer.Factors(name);
            yield return a.weight;
            yield return b.weight;
        }
    }

    /// <summary>What an optimizer should update: every adapter parameter that requires grad.</summary>
    public IEnumerable<Parameter> TrainableParameters() =>
        _adapters.Keys.SelectMany(AdapterParameters).Where(p => p.requires_grad);

    /// <summary>
    /// Copies one adapter to CPU as <see cref="LoraWeights"/>, ready for <see cref="LoraFile.Write"/>. Strength is not folded
    /// in (the file holds the adapter as trained); rsLoRA's alpha / √r is stored as an equivalent alpha·√r.
    /// </summary>
    public LoraWeights ExportAdapter(string name, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var modules = new List<KeyValuePair<string, LoraModule>>();
        using (no_grad())
            foreach (var (moduleName, layer) in _layers.Where(l => l.Value.HasAdapter(name)))
            {
                var (a, b) = layer.Factors(name);
                double alpha = layer.Alpha(name);
                long rank = a.weight.shape[0];
                if (layer.UsesRsLora(name)) alpha *= Math.Sqrt(rank);
                modules.Add(new(moduleName, new LoraModule(a.weight.detach().cpu().clone(), b.weight.detach().cpu().clone(), alpha)));
            }
        if (modules.Count == 0) throw new KeyNotFoundException($"no adapter named '{name}' (adapters: {string.Join(", ", _adapters.Keys)})");
        var meta = new Dictionary<string, string>(_adapters[name].Metadata);
        if (metadata != null) foreach (var (k, v) in metadata) meta[k] = v;
        return new LoraWeights(modules, meta, $"adapter '{name}'");
    }

    /// <summary>Removes every adapter and hook and restores the parameters' original trainability: the model is as before.</summary>
    public void Unload()
    {
        foreach (var layer in _layers.Values) layer.Dispose();
        _layers.Clear();
        _adapters.Clear();
        if (_frozenFrom != null)
            foreach (var (p, requiresGrad) in _frozenFrom) p.requires_grad = requiresGrad;
        _frozenFrom = null;
    }

    /// <summary>Adds every adapter's update (at its strength) into the base weights, in their dtype, then unloads.</summary>
    public void MergeAndUnload()
    {
        foreach (var layer in _layers.Values) layer.MergeIntoBase();
        Unload();
    }

    List<(string Name, Linear Linear)> FindTargets(LoraTargets targets)
    {
        var all = LinearsByName();
        var hit = all.Where(kv => targets.Matches(kv.Key)).Select(kv => (kv.Key, kv.Value)).OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        if (hit.Count == 0)
            throw new ArgumentException(
                $"LoRA targets '{targets}' match none of the {all.Count} Linear layers of {Model.GetType().Name}; " +
                $"they are: {LoraTargetCatalog.DescribeNames(all.Keys)}");
        return hit;
    }

    Dictionary<string, Linear> LinearsByName()
    {
        var map = new Dictionary<string, Linear>(StringComparer.Ordinal);
        foreach (var (name, module) in Model.named_modules())
            if (module is Linear lin && !LoraTargetCatalog.IsAdapterInternal(name)) map[name] = lin;
        return map;
    }

    LoraLinear LayerFor(string moduleName, Linear linear)
    {
        if (_layers.TryGetValue(moduleName, out var layer)) return layer;
        layer = new LoraLinear(linear) { DropoutGenerator = _dropoutGenerator };
        layer.AttachToBase();
        _layers[moduleName] = layer;
        return layer;
    }

    IEnumerable<LoraLinear> LayersOf(string name)
    {
        if (!_adapters.ContainsKey(name) && !_layers.Values.Any(l => l.HasAdapter(name)))
            throw new KeyNotFoundException($"no adapter named '{name}' (adapters: {(_adapters.Count == 0 ? "none" : string.Join(", ", _adapters.Keys))})");
        return _layers.Values.Where(l => l.HasAdapter(name)).ToList();
    }

    void DropEmptyLayers()
    {
        foreach (var (moduleName, layer) in _layers.Where(l => l.Value.AdapterNames.Count == 0).ToList())
        {
            layer.Dispose();
            _layers.Remove(moduleName);
        }
    }

    void RequireNewName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.')) throw new ArgumentException($"adapter name '{name}' must be non-empty and without '.'");
        if (_adapters.ContainsKey(name)) throw new ArgumentException($"an adapter named '{name}' is already attached");
    }

    /// <summary>Only adapters train: every other parameter of the model stops requiring grad (first state remembered).</summary>
    void FreezeBase()
    {
        var adapterParams = new HashSet<Parameter>(_adapters.Keys.SelectMany(AdapterParameters), ReferenceEqualityComparer.Instance);
        _frozenFrom ??= new Dictionary<Parameter, bool>(ReferenceEqualityComparer.Instance);
        foreach (var (_, p) in Model.named_parameters())
        {
            if (adapterParams.Contains(p)) continue;
            _frozenFrom.TryAdd(p, p.requires_grad);
            p.requires_grad = false;
        }
    }

    public void Dispose() => Unload();
}
