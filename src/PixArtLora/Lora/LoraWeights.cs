using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// The factors of one adapted Linear: <see cref="Down"/> = A [r, in], <see cref="Up"/> = B [out, r], and alpha such that
/// the weight update is (alpha / r) · B·A. rsLoRA files are folded in on reading (alpha·√r), so one rule holds everywhere.
/// The module owns its two tensors (they leave any dispose scope) and frees them in <see cref="Dispose"/>.
/// </summary>
public sealed class LoraModule : IDisposable
{
    public Tensor Down { get; }
    public Tensor Up { get; }
    public double Alpha { get; }

    public LoraModule(Tensor down, Tensor up, double alpha)
    {
        if (down.dim() != 2 || up.dim() != 2 || up.shape[1] != down.shape[0])
            throw new ArgumentException($"LoRA factors A [{string.Join(", ", down.shape)}], B [{string.Join(", ", up.shape)}]: expected A [r, in] and B [out, r]");
        Down = down.DetachFromDisposeScope();
        Up = up.DetachFromDisposeScope();
        Alpha = alpha;
    }

    public long Rank => Down.shape[0];
    public long InFeatures => Down.shape[1];
    public long OutFeatures => Up.shape[0];

    /// <summary>alpha / r.</summary>
    public double Scale => Alpha / Rank;

    /// <summary>(alpha / r) · B·A in fp32 on <paramref name="device"/> (default: where the factors are).</summary>
    public Tensor DeltaWeight(Device? device = null)
    {
        using var scope = NewDisposeScope();
        var up = Up.to(float32, device ?? Up.device);
        var down = Down.to(float32, device ?? Up.device);
        return up.matmul(down).mul_(Scale).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Down.Dispose();
        Up.Dispose();
    }
}

/// <summary>
/// An adapter in memory, keyed by the diffusers module names of the model it applies to
/// (<c>transformer_blocks.0.attn1.to_q</c>), whatever naming the file it came from used.
/// </summary>
public sealed class LoraWeights : IDisposable
{
    readonly SortedDictionary<string, LoraModule> _modules;

    public LoraWeights(IEnumerable<KeyValuePair<string, LoraModule>> modules, IReadOnlyDictionary<string, string>? metadata = null,
        string? source = null, IReadOnlyList<string>? warnings = null)
    {
        _modules = new SortedDictionary<string, LoraModule>(StringComparer.Ordinal);
        foreach (var (k, v) in modules)
            if (!_modules.TryAdd(k, v)) throw new ArgumentException($"LoRA module '{k}' appears twice{(source != null ? " in " + source : "")}");
        Metadata = metadata ?? new Dictionary<string, string>();
        Source = source ?? "(in memory)";
        Warnings = warnings ?? Array.Empty<string>();
    }

    /// <summary>Module name → factors, in name order.</summary>
    public IReadOnlyDictionary<string, LoraModule> Modules => _modules;

    /// <summary>Free-form facts kept with the adapter (rank, alpha, targets, base model, training settings).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The file or folder this adapter was read from.</summary>
    public string Source { get; }

    /// <summary>Things a user should know about how the file was read (e.g. alpha assumed equal to the rank).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The rank, when every module has the same one.</summary>
    public long? UniformRank => Uniform(m => m.Rank);

    /// <summary>alpha, when every module has the same one.</summary>
    public double? UniformAlpha => Uniform(m => m.Alpha);

    T? Uniform<T>(Func<LoraModule, T> f) where T : struct
    {
        var values = _modules.Values.Select(f).Distinct().ToList();
        return values.Count == 1 ? values[0] : null;
    }

    public void Dispose()
    {
        foreach (var m in _modules.Values) m.Dispose();
        _modules.Clear();
    }
}
