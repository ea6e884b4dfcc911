using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// LoRA around an existing <see cref="Linear"/>: <c>y = W x + b + Σ_adapters m · s · B(A(dropout(x)))</c> with
/// s = alpha / r (rsLoRA: alpha / √r) and m the user's strength (1 by default, adjustable at inference).
/// The base weight is never touched and may be bf16 while A and B are fp32 (trainable master weights). Then the
/// update is computed in the input's half precision with A and B cast to it on the fly — what autocast does for
/// PEFT layers in diffusers' bf16 training — and gradients flow back through the casts into the fp32 weights. With
/// fp32 inputs everything stays fp32. All casts are explicit, because a mixed-dtype matmul aborts TorchSharp.
/// <para>
/// <see cref="forward"/> computes the whole thing for standalone use. Inside a model, <see cref="LoraNetwork"/>
/// leaves the Linear where it is and attaches this layer with a forward hook, so the model's parameter names do not
/// change and the adapters show up as <c>&lt;module&gt;.lora_A.&lt;adapter&gt;.weight</c> (PEFT's in-memory names).
/// </para>
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    sealed class Adapter
    {
        public required Linear A;
        public required Linear B;
        public Dropout? Dropout;
        public double DropoutP;
        public double Alpha;
        public bool UseRsLora;
        public double Strength = 1.0;
        public long Rank => A.weight.shape[0];
        public double Scale => LoraConfig.ScaleOf(Alpha, Rank, UseRsLora) * Strength;
    }

    readonly List<(string Name, Adapter Adapter)> _adapters = new();
    readonly AdapterSlots _loraA = new(), _loraB = new(), _dropout = new();
    nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover? _hook;

    /// <summary>The wrapped layer; its weight and bias are frozen by <see cref="LoraNetwork"/> and never changed, except by an explicit merge.</summary>
    public Linear Base { get; }

    /// <summary>Wraps <paramref name="baseLayer"/> without adapters.</summary>
    public LoraLinear(Linear baseLayer) : base(nameof(LoraLinear))
    {
        Base = baseLayer;
        // Registered by hand: an automatic RegisterComponents would also register Base, whose weights belong to the model.
        register_module("lora_A", _loraA);
        register_module("lora_B", _loraB);
        register_module("lora_dropout", _dropout);
    }

    public long InFeatures => Base.in_features;
    public long OutFeatures => Base.out_features;

    /// <summary>Names of the adapters, in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => _adapters.Select(a => a.Name).ToList();

    public bool HasAdapter(string name) => _adapters.Any(a => a.Name == name);

    /// <summary>Adds a new trainable adapter: A initialised per <paramref name="config"/> from <paramref name="generator"/>, B zero.</summary>
    public void AddAdapter(string name, LoraConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32, Generator? generator = null)
    {
        config.Validate();
        using var noGrad = no_grad();
        // Drawn on the CPU so that the same seed gives the same adapter on every device.
        Tensor init = config.Init switch
        {
            // In place on the drawn tensor: no unreferenced temporaries a GC could finalize during a native call.
            LoraInit.Gaussian => randn(new long[] { config.Rank, InFeatures }, float32, generator: generator).mul_(1.0 / config.Rank),
            _ => rand(new long[] { config.Rank, InFeatures }, float32, generator: generator).mul_(2).sub_(1).mul_(1.0 / Math.Sqrt(InFeatures)),
        };
        using (init)
        using (var zeroB = zeros(OutFeatures, config.Rank))
            Add(name, init, zeroB, config.Alpha, config.UseRsLora, config.Dropout, device, dtype);
    }

    /// <summary>
    /// Adds an adapter with given factors (copied): <paramref name="down"/> = A [r, in], <paramref name="up"/> = B [out, r].
    /// </summary>
    public void SetAdapter(string name, Tensor down, Tensor up, double alpha, bool useRsLora = false, double dropout = 0,
        Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        if (down.dim() != 2 || up.dim() != 2 || down.shape[1] != InFeatures || up.shape[0] != OutFeatures || up.shape[1] != down.shape[0])
            throw new ArgumentException(
                $"adapter '{name}': A [{string.Join(", ", down.shape)}] and B [{string.Join(", ", up.shape)}] do not fit a Linear " +
                $"{InFeatures} → {OutFeatures} (expected A [r, {InFeatures}], B [{OutFeatures}, r])");
        Add(name, down, up, alpha, useRsLora, dropout, device, dtype);
    }

    void Add(string name, Tensor down, Tensor up, double alpha, bool useRsLora, double dropout, Device? device, ScalarType dtype)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.')) throw new ArgumentException($"adapter name '{name}' must be non-empty and without '.'");
        if (HasAdapter(name)) throw new ArgumentException($"adapter '{name}' already exists on this layer");
        device ??= Base.weight.device;
        long rank = down.shape[0];
        var a = nn.Linear(InFeatures, rank, hasBias: false, device: device, dtype: dtype);
        var b = nn.Linear(rank, OutFeatures, hasBias: false, device: device, dtype: dtype);
        using (no_grad())
        {
            a.weight.copy_(down);
            b.weight.copy_(up);
        }
        var adapter = new Adapter { A = a, B = b, Alpha = alpha, UseRsLora = useRsLora };
        _loraA.Add(name, a);
        _loraB.Add(name, b);
        if (dropout > 0)
        {
            adapter.DropoutP = dropout;
            adapter.Dropout = nn.Dropout(dropout);
            adapter.Dropout.train(Base.training);
            _dropout.Add(name, adapter.Dropout);
        }
        _adapters.Add((name, adapter));
    }

    /// <summary>Removes an adapter and frees its tensors.</summary>
    public void RemoveAdapter(string name)
    {
        var adapter = Find(name);
        _adapters.RemoveAll(a => a.Name == name);
        _loraA.Remove(name);
        _loraB.Remove(name);
        _dropout.Remove(name);
        adapter.A.Dispose();
        adapter.B.Dispose();
        adapter.Dropout?.Dispose();
    }

    /// <summary>The user's strength m for one adapter (1 = as trained, 0 = off).</summary>
    public void SetStrength(string name, double strength) => Find(name).Strength = strength;

    public double GetStrength(string name) => Find(name).Strength;

    /// <summary>The factor in front of B·A, strength included: m · alpha / r.</summary>
    public double EffectiveScale(string name) => Find(name).Scale;

    /// <summary>lora_alpha of one adapter (as given; with rsLoRA the scale is alpha / √r).</summary>
    public double Alpha(string name) => Find(name).Alpha;

    public bool UsesRsLora(string name) => Find(name).UseRsLora;

    /// <summary>The A ([r, in]) and B ([out, r]) modules of one adapter.</summary>
    public (Linear A, Linear B) Factors(string name)
    {
        var a = Find(name);
        return (a.A, a.B);
    }

    /// <summary>
    /// Σ m · s · B(A(dropout(x))), returned in <paramref name="outputDtype"/>; computed in x's dtype when x is bf16/fp16
    /// (adapter weights cast to it), else in the adapters' dtype.
    /// </summary>
    public Tensor Delta(Tensor x, ScalarType outputDtype)
    {
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var (_, a) in _adapters)
        {
            if (a.Strength == 0) continue;
            var (z, up) = DownProjection(a, x);
            var d = nn.functional.linear(z, up);
            sum = sum is null ? d : sum.add(d.to(sum.dtype));
        }
        if (sum is null) return zeros(x.shape[..^1].Append(OutFeatures).ToArray(), dtype: outputDtype, device: x.device).MoveToOuterDisposeScope();
        return (sum.dtype == outputDtype ? sum : sum.to(outputDtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Where dropout draws its masks from while training; null: nn.Dropout and the global torch generator. A trainer
    /// sets its own stream so that its runs are reproducible and resumable whatever else uses the global generator.
    /// </summary>
    public Generator? DropoutGenerator { get; set; }

    /// <summary>Inverted dropout as nn.Dropout computes it, with the keep mask drawn on the CPU from <paramref name="generator"/>.</summary>
    static Tensor DropWith(Tensor h, double p, Generator generator)
    {
        var keep = empty(h.shape, ScalarType.Float32, CPU).bernoulli_(1 - p, generator).to(h.dtype, h.device);
        return h.mul(keep).div_(1 - p);
    }

    /// <summary>The weight update of one adapter, m · s · B·A, as an fp32 [out, in] tensor.</summary>
    public Tensor DeltaWeight(string name)
    {
        var a = Find(name);
        using var noGrad = no_grad();
        using var up = a.B.weight.to(float32);
        using var down = a.A.weight.to(float32);
        return up.matmul(down).mul_(a.Scale);
    }

    /// <summary>Base output plus the adapters' update; the input is cast to the base weight's dtype for the base path only.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = Base.forward(x.dtype == Base.weight.dtype ? x : x.to(Base.weight.dtype));
        return Combine(x, y).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// y + Σ m · s · B(A(dropout(x))), with each adapter's up-projection accumulating into the running output inside its
    /// own GEMM (addmm, beta 1) when the dtypes agree: one pass over the full-width output fewer per adapter, forward
    /// and backward, than computing the update and adding it.
    /// </summary>
    Tensor Combine(Tensor x, Tensor y)
    {
        if (_adapters.All(a => a.Adapter.Strength == 0)) return y;
        using var scope = NewDisposeScope();
        var acc = y;
        foreach (var (_, a) in _adapters)
        {
            if (a.Strength == 0) continue;
            var (z, up) = DownProjection(a, x);
            acc = z.dtype == acc.dtype
                ? addmm(acc.reshape(-1, OutFeatures), z.reshape(-1, z.shape[^1]), up.t(), beta: 1, alpha: 1).view(acc.shape)
                : acc.add(nn.functional.linear(z, up).to(acc.dtype));
        }
        return acc.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// m · s · A(dropout(x)), the rank-r intermediate of one adapter, and B's weight, both in the dtype the update is
    /// computed in: x's when x is bf16/fp16 (adapter weights cast to it), else the adapters' own. The scale is applied
    /// to the r-wide intermediate rather than to the full-width update, which is the same product in a fraction of
    /// the work.
    /// </summary>
    (Tensor Z, Tensor Up) DownProjection(Adapter a, Tensor x)
    {
        // Measured on the 2-core CPU, Σ-512 bf16 LoRA step: the fp32 detour (casting every activation to fp32,
        // skinny fp32 GEMMs, casting back) took ~7% of the step.
        var compute = x.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? x.dtype : a.A.weight.dtype;
        var h = x.dtype == compute ? x : x.to(compute);
        if (a.Dropout != null)
            h = DropoutGenerator is { } g && a.Dropout.training ? DropWith(h, a.DropoutP, g) : a.Dropout.call(h);
        var down = a.A.weight.dtype == compute ? a.A.weight : a.A.weight.to(compute);
        var up = a.B.weight.dtype == compute ? a.B.weight : a.B.weight.to(compute);
        return (nn.functional.linear(h, down).mul(a.Scale), up);
    }

    /// <summary>
    /// Makes the model see the adapters: a forward hook on <see cref="Base"/> adds the update to its output, and the
    /// adapter modules are registered under it so that the model's <c>parameters()</c>, <c>to()</c> and <c>train()</c> reach them.
    /// </summary>
    internal void AttachToBase()
    {
        if (_hook != null) return;
        Base.register_module("lora_A", _loraA);
        Base.register_module("lora_B", _loraB);
        Base.register_module("lora_dropout", _dropout);
        _hook = Base.register_forward_hook((_, input, output) => Combine(input, output));
    }

    /// <summary>Undoes <see cref="AttachToBase"/>: the Linear computes exactly what it did before.</summary>
    internal void DetachFromBase()
    {
        if (_hook == null) return;
        _hook.remove();
        _hook = null;
        foreach (var name in new[] { "lora_A", "lora_B", "lora_dropout" }) Base.register_module(name, null!);
    }

    /// <summary>Adds every adapter's update (m · s · B·A, computed in fp32) into the base weight, in its dtype.</summary>
    internal void MergeIntoBase()
    {
        if (_adapters.Count == 0) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = Base.weight.to(float32);
        foreach (var (_, a) in _adapters)
            w = addmm(w, a.B.weight.to(float32, w.device), a.A.weight.to(float32, w.device), beta: 1, alpha: (float)a.Scale);
        Base.weight.copy_(w);
    }

    Adapter Find(string name) =>
        _adapters.FirstOrDefault(a => a.Name == name).Adapter ?? throw new KeyNotFoundException(
            $"no adapter '{name}' on this layer (adapters: {(_adapters.Count == 0 ? "none" : string.Join(", ", _adapters.Select(a => a.Name)))})");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DetachFromBase();
            foreach (var (_, a) in _adapters) { a.A.Dispose(); a.B.Dispose(); a.Dropout?.Dispose(); }
            _adapters.Clear();
        }
        base.Dispose(disposing);
    }

    /// <summary>A module holding one child per adapter name, so parameter names read <c>lora_A.&lt;adapter&gt;.weight</c>.</summary>
    sealed class AdapterSlots : nn.Module
    {
        public AdapterSlots() : base("LoraAdapterSlots") { }

        public void Add(string name, nn.Module module) => register_module(name, module);

        public void Remove(string name) => register_module(name, null!);

        // Children are registered one by one as adapters come and go; nothing to discover by reflection.
        protected override void RegisterComponents() { }
    }
}
