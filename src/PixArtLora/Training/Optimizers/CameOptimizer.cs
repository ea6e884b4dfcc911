using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Training.Optimizers;

/// <summary>
/// Settings of <see cref="CameOptimizer"/>. Defaults are those of the CAME paper and of PixArt's configs
/// (<c>CAMEWrapper</c>: betas (0.9, 0.999, 0.9999), eps (1e-30, 1e-16), clip_threshold 1.0).
/// </summary>
public sealed record CameSettings(
    double LearningRate = 2e-5,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Beta3 = 0.9999,
    double Epsilon1 = 1e-30,
    double Epsilon2 = 1e-16,
    double ClipThreshold = 1.0,
    double WeightDecay = 0.0);

/// <summary>
/// CAME, "Confidence-guided Adaptive Memory Efficient Optimization" (Luo et al., ACL 2023), the optimizer of
/// the official PixArt training configs. Follows the update rule of the authors' <c>came_pytorch.CAME.step</c>:
/// <list type="number">
/// <item>v ← β₂v + (1−β₂)(g² + ε₁), factored for tensors with ≥ 2 dims into a row and a column mean
///   (Adafactor style), so the second moment costs O(n+m) instead of O(nm);</item>
/// <item>u = g / √v, then u ← u / max(1, RMS(u)/d) with d the clip threshold;</item>
/// <item>m ← β₁m + (1−β₁)u;</item>
/// <item>instability U = (u − m)² + ε₂, its EMA (β₃) factored the same way into S;</item>
/// <item>θ ← θ − lr·wd·θ, then θ ← θ − lr·m/√S (for 1-D tensors: θ ← θ − lr·m).</item>
/// </list>
/// State is kept in float32 whatever the parameter dtype (the reference upcasts half gradients too).
/// </summary>
public sealed class CameOptimizer : ITrainingOptimizer
{
    /// <summary>The per-parameter state slots, as named in the reference implementation.</summary>
    public static class Slots
    {
        public const string ExpAvg = "exp_avg";
        public const string ExpAvgSq = "exp_avg_sq";
        public const string ExpAvgSqRow = "exp_avg_sq_row";
        public const string ExpAvgSqCol = "exp_avg_sq_col";
        public const string ExpAvgResRow = "exp_avg_res_row";
        public const string ExpAvgResCol = "exp_avg_res_col";
    }

    sealed class State
    {
        public long Step;
        public required Tensor ExpAvg;
        public Tensor? ExpAvgSq, SqRow, SqCol, ResRow, ResCol;
        public bool Factored => SqRow is not null;

        public IEnumerable<(string Slot, Tensor Tensor)> Tensors()
        {
            yield return (Slots.ExpAvg, ExpAvg);
            if (Factored)
            {
                yield return (Slots.ExpAvgSqRow, SqRow!);
                yield return (Slots.ExpAvgSqCol, SqCol!);
                yield return (Slots.ExpAvgResRow, ResRow!);
                yield return (Slots.ExpAvgResCol, ResCol!);
            }
            else yield return (Slots.ExpAvgSq, ExpAvgSq!);
        }
    }

    readonly List<(string Name, Parameter Parameter)> _parameters;
    readonly List<State> _states = new();

    public CameOptimizer(IEnumerable<(string Name, Parameter Parameter)> parameters, CameSettings settings)
    {
        if (settings.LearningRate <= 0) throw new ArgumentException($"CAME: learning rate must be > 0, got {settings.LearningRate}");
        foreach (var (name, b) in new[] { ("beta1", settings.Beta1), ("beta2", settings.Beta2), ("beta3", settings.Beta3) })
            if (b is < 0 or > 1) throw new ArgumentException($"CAME: {name} must be in [0, 1], got {b}");
        _parameters = OptimizerParameters.Validate(parameters, "CAME");
        Settings = settings;
        LearningRate = settings.LearningRate;
        // The reference creates state on a parameter's first update; creating it up front gives the same
        // values (all zeros) and lets a checkpoint always hold every parameter.
        foreach (var (_, p) in _parameters) _states.Add(NewState(p));
    }

    public CameSettings Settings { get; }

    public string Kind => "came";

    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _parameters;

    public double LearningRate { get; set; }

    static State NewState(Parameter p)
    {
        var shape = p.shape;
        var opts = (dtype: ScalarType.Float32, device: p.device);
        var state = new State { ExpAvg = zeros(shape, opts.dtype, opts.device).DetachFromDisposeScope() };
        if (shape.Length >= 2)
        {
            long[] row = shape[..^1];
            long[] col = shape[..^2].Append(shape[^1]).ToArray();
            state.SqRow = zeros(row, opts.dtype, opts.device).DetachFromDisposeScope();
            state.SqCol = zeros(col, opts.dtype, opts.device).DetachFromDisposeScope();
            state.ResRow = zeros(row, opts.dtype, opts.device).DetachFromDisposeScope();
            state.ResCol = zeros(col, opts.dtype, opts.device).DetachFromDisposeScope();
        }
        else state.ExpAvgSq = zeros(shape, opts.dtype, opts.device).DetachFromDisposeScope();
        return state;
    }

    public void Step()
    {
        var s = Settings;
        double lr = LearningRate;
        using var noGrad = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            using var scope = NewDisposeScope();
            var p = _parameters[i].Parameter;
            var rawGrad = p.grad;
            if (rawGrad is null) continue;
            if (rawGrad.is_sparse) throw new NotSupportedException($"CAME: parameter '{_parameters[i].Name}' has a sparse gradient");
            var grad = rawGrad.dtype == ScalarType.Float32 ? rawGrad : rawGrad.to(ScalarType.Float32);
            var st = _states[i];
            st.Step++;

            // Second moment of the gradient (factored for matrices).
            var update = grad.square().add_(s.Epsilon1);
            if (st.Factored)
            {
                st.SqRow!.mul_(s.Beta2).add_(update.mean(new long[] { -1 }), alpha: 1.0 - s.Beta2);
                st.SqCol!.mul_(s.Beta2).add_(update.mean(new long[] { -2 }), alpha: 1.0 - s.Beta2);
                update = ApproximateFromFactors(st.SqRow, st.SqCol).mul_(grad);
            }
            else
            {
                st.ExpAvgSq!.mul_(s.Beta2).add_(update, alpha: 1.0 - s.Beta2);
                update = st.ExpAvgSq.rsqrt().mul_(grad);
            }
            update.div_((RootMeanSquare(update) / s.ClipThreshold).clamp_(min: 1.0));

            st.ExpAvg.mul_(s.Beta1).add_(update, alpha: 1.0 - s.Beta1);

            // Confidence: how far this step's update strays from its running mean, tracked with β₃.
            var residual = (update - st.ExpAvg).square().add_(s.Epsilon2);
            if (st.Factored)
            {
                st.ResRow!.mul_(s.Beta3).add_(residual.mean(new long[] { -1 }), alpha: 1.0 - s.Beta3);
                st.ResCol!.mul_(s.Beta3).add_(residual.mean(new long[] { -2 }), alpha: 1.0 - s.Beta3);
                update = ApproximateFromFactors(st.ResRow, st.ResCol).mul_(st.ExpAvg);
            }
            else update = st.ExpAvg.clone();

            // Decoupled weight decay, written as the reference does (θ + (−wd·lr)·θ) so rounding matches.
            if (s.WeightDecay != 0) p.add_(p, alpha: -s.WeightDecay * lr);
            update.mul_(lr);
            p.sub_(update.dtype == p.dtype ? update : update.to(p.dtype));
        }
    }

    /// <summary>
    /// Rebuilds the full matrix from its row and column means: rsqrt(row / mean(row)) ⊗ rsqrt(col),
    /// i.e. 1/√(row·col/mean(row)), the reference's <c>_approx_sq_grad</c>.
    /// </summary>
    static Tensor ApproximateFromFactors(Tensor row, Tensor col)
    {
        var r = (row / row.mean(new long[] { -1 }, keepdim: true)).rsqrt_().unsqueeze(-1);
        var c = col.unsqueeze(-2).rsqrt();
        return r.mul(c);
    }

    static Tensor RootMeanSquare(Tensor t) => t.norm() / Math.Sqrt(t.numel());

    public void ZeroGrad() => OptimizerParameters.DropGradients(_parameters);

    public OptimizerStateSnapshot ExportState()
    {
        var steps = new Dictionary<string, long>();
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < _parameters.Count; i++)
        {
            steps[_parameters[i].Name] = _states[i].Step;
            foreach (var (slot, t) in _states[i].Tensors())
                tensors[OptimizerStateSnapshot.Key(_parameters[i].Name, slot)] = t;
        }
        var s = Settings;
        return new OptimizerStateSnapshot
        {
            Kind = Kind,
            Hyperparameters = new JsonObject
            {
                ["lr"] = LearningRate, ["beta1"] = s.Beta1, ["beta2"] = s.Beta2, ["beta3"] = s.Beta3,
                ["eps1"] = s.Epsilon1, ["eps2"] = s.Epsilon2, ["clip_threshold"] = s.ClipThreshold,
                ["weight_decay"] = s.WeightDecay,
            },
            Steps = steps,
            Tensors = tensors,
        };
    }

    public void ImportState(OptimizerStateSnapshot state)
    {
        state.RequireKind(Kind);
        for (int i = 0; i < _parameters.Count; i++)
        {
            string name = _parameters[i].Name;
            long step = state.StepOf(name);
            foreach (var (slot, t) in _states[i].Tensors()) state.CopyInto(name, slot, t);
            _states[i].Step = step;
        }
    }

    public void Dispose()
    {
        foreach (var st in _states)
            foreach (var (_, t) in st.Tensors()) t.Dispose();
        _states.Clear();
    }
}
