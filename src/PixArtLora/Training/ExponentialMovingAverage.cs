using System.Text.Json;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Training;

/// <summary>How the EMA decay moves from 0 towards <see cref="EmaSettings.Decay"/> as training proceeds.</summary>
public enum EmaWarmup
{
    /// <summary>The fixed decay from the first update on, as PixArt's own training loop (<c>ema_update(..., config.ema_rate)</c>).</summary>
    None,
    /// <summary>diffusers' <c>EMAModel</c> without <c>use_ema_warmup</c>: decay (1+t)/(10+t), capped at the decay.</summary>
    Ramp,
    /// <summary>diffusers' <c>EMAModel</c> with <c>use_ema_warmup</c>: 1 − (1 + t/inv_gamma)^(−power), capped.</summary>
    InversePower,
}

/// <summary>Settings of <see cref="ExponentialMovingAverage"/>; the defaults match PixArt's configs (ema_rate 0.9999).</summary>
public sealed record EmaSettings(
    double Decay = 0.9999,
    EmaWarmup Warmup = EmaWarmup.None,
    double MinDecay = 0.0,
    long UpdateAfterStep = 0,
    double InvGamma = 1.0,
    double Power = 2.0 / 3.0);

/// <summary>
/// An exponential moving average of trainable weights (shadow ← shadow + (1−decay)·(weight − shadow) after
/// every optimizer update), kept in float32 on a device of the caller's choice, saveable for resume.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    public const string TensorsFileName = "ema.safetensors";
    public const string ScalarsFileName = "ema.json";

    readonly List<(string Name, Parameter Parameter)> _parameters;
    readonly Dictionary<string, Tensor> _shadow = new();
    Dictionary<string, Tensor>? _stored;

    /// <summary>Starts the average at the current weights.</summary>
    /// <param name="parameters">The weights to average, by name.</param>
    /// <param name="settings">Decay and warmup.</param>
    /// <param name="storageDevice">Where the averages live (default: beside each weight). The CPU saves
    /// accelerator memory at the cost of a copy per update.</param>
    public ExponentialMovingAverage(IEnumerable<(string Name, Parameter Parameter)> parameters, EmaSettings? settings = null, Device? storageDevice = null)
    {
        Settings = settings ?? new EmaSettings();
        if (Settings.Decay is < 0 or > 1) throw new ArgumentException($"EMA decay must be in [0, 1], got {Settings.Decay}");
        _parameters = parameters.ToList();
        using var noGrad = no_grad();
        foreach (var (name, p) in _parameters)
        {
            if (_shadow.ContainsKey(name)) throw new ArgumentException($"EMA: parameter name '{name}' appears twice");
            _shadow[name] = p.detach().to(ScalarType.Float32, storageDevice ?? p.device, copy: true).DetachFromDisposeScope();
        }
    }

    public EmaSettings Settings { get; }

    /// <summary>How many updates the average has received.</summary>
    public long OptimizationStep { get; private set; }

    /// <summary>The averaged weights, by parameter name (live tensors).</summary>
    public IReadOnlyDictionary<string, Tensor> Shadow => _shadow;

    /// <summary>The decay used by update number <paramref name="optimizationStep"/> (1-based, as diffusers counts).</summary>
    public double DecayAt(long optimizationStep)
    {
        var s = Settings;
        long t = Math.Max(0, optimizationStep - s.UpdateAfterStep - 1);
        if (s.Warmup == EmaWarmup.None) return optimizationStep > s.UpdateAfterStep ? s.Decay : 0.0;
        if (t <= 0) return 0.0;
        double d = s.Warmup == EmaWarmup.InversePower
            ? 1.0 - Math.Pow(1.0 + t / s.InvGamma, -s.Power)
            : (1.0 + t) / (10.0 + t);
        return Math.Max(Math.Min(d, s.Decay), s.MinDecay);
    }

    /// <summary>Moves the averages towards the current weights; call once after every optimizer update.</summary>
    public void Update()
    {
        OptimizationStep++;
        double decay = DecayAt(OptimizationStep);
        using var noGrad = no_grad();
        foreach (var (name, p) in _parameters)
        {
            using var scope = NewDisposeScope();
            var shadow = _shadow[name];
            var current = p.detach().to(ScalarType.Float32, shadow.device);
            if (p.requires_grad) shadow.lerp_(current, 1.0 - decay);
            else shadow.copy_(current);
        }
    }

    /// <summary>Writes the averages into the weights (e.g. before saving the final model).</summary>
    public void CopyTo(IEnumerable<(string Name, Parameter Parameter)> parameters)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters)
        {
            if (!_shadow.TryGetValue(name, out var s)) throw new ArgumentException($"EMA has no average for parameter '{name}'");
            p.copy_(s);
        }
    }

    /// <summary>Keeps a copy of the current weights and puts the averages in their place (for validation with EMA weights).</summary>
    public void SwapIn()
    {
        if (_stored != null) throw new InvalidOperationException("EMA weights are already swapped in; call SwapOut first");
        using var noGrad = no_grad();
        _stored = _parameters.ToDictionary(p => p.Name, p => p.Parameter.detach().clone().DetachFromDisposeScope());
        CopyTo(_parameters);
    }

    /// <summary>Restores the weights saved by <see cref="SwapIn"/>.</summary>
    public void SwapOut()
    {
        if (_stored == null) throw new InvalidOperationException("EMA weights are not swapped in");
        using var noGrad = no_grad();
        foreach (var (name, p) in _parameters) { p.copy_(_stored[name]); _stored[name].Dispose(); }
        _stored = null;
    }

    /// <summary>Writes <c>ema.safetensors</c> (averages) and <c>ema.json</c> (step count, settings) into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Save(Path.Combine(folder, TensorsFileName), _shadow);
        var json = new JsonObject
        {
            ["optimization_step"] = OptimizationStep,
            ["decay"] = Settings.Decay,
            ["warmup"] = Settings.Warmup.ToString(),
            ["min_decay"] = Settings.MinDecay,
            ["update_after_step"] = Settings.UpdateAfterStep,
            ["inv_gamma"] = Settings.InvGamma,
            ["power"] = Settings.Power,
        };
        AtomicFile.WriteAllText(Path.Combine(folder, ScalarsFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Loads what <see cref="Save"/> wrote, in place; every averaged weight must be present with its shape.</summary>
    public void Load(string folder)
    {
        string tensors = Path.Combine(folder, TensorsFileName), scalars = Path.Combine(folder, ScalarsFileName);
        foreach (var f in new[] { tensors, scalars })
            if (!File.Exists(f)) throw new FileNotFoundException($"EMA state file {f} is missing", f);
        var json = JsonNode.Parse(File.ReadAllText(scalars)) as JsonObject
            ?? throw new InvalidDataException($"{scalars}: not a JSON object");
        long step = json["optimization_step"]?.GetValue<long>() ?? throw new InvalidDataException($"{scalars}: field 'optimization_step' is missing");
        using var file = SafetensorsFile.Open(tensors);
        foreach (var (name, shadow) in _shadow)
        {
            if (!file.Entries.ContainsKey(name))
                throw new InvalidDataException($"{tensors}: no average for parameter '{name}' (the file holds {file.Entries.Count} tensors)");
            file.ReadInto(name, shadow);
        }
        OptimizationStep = step;
    }

    public void Dispose()
    {
        foreach (var t in _shadow.Values) t.Dispose();
        _shadow.Clear();
        if (_stored != null) foreach (var t in _stored.Values) t.Dispose();
    }
}
