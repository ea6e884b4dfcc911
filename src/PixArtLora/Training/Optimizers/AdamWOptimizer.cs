using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Training.Optimizers;

/// <summary>Settings of <see cref="AdamWOptimizer"/>; the defaults are those of the diffusers LoRA scripts.</summary>
public sealed record AdamWSettings(
    double LearningRate = 1e-4,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Epsilon = 1e-8,
    double WeightDecay = 1e-2);

/// <summary>
/// TorchSharp's <c>torch.optim.AdamW</c> (decoupled weight decay, bias-corrected moments, the same update as
/// PyTorch's single-tensor implementation) behind <see cref="ITrainingOptimizer"/>, with its per-parameter
/// state (step, exp_avg, exp_avg_sq) exposed for exact save and resume.
/// </summary>
public sealed class AdamWOptimizer : ITrainingOptimizer
{
    readonly TorchSharp.Modules.AdamW _inner;
    readonly List<(string Name, Parameter Parameter)> _parameters;

    public AdamWOptimizer(IEnumerable<(string Name, Parameter Parameter)> parameters, AdamWSettings settings)
    {
        _parameters = OptimizerParameters.Validate(parameters, "AdamW");
        Settings = settings;
        // One parameter group, in our order, so that state_dict().State[i] belongs to _parameters[i].
        _inner = optim.AdamW(_parameters.Select(p => p.Parameter), settings.LearningRate, settings.Beta1, settings.Beta2,
            settings.Epsilon, settings.WeightDecay);
    }

    public AdamWSettings Settings { get; }

    public string Kind => "adamw";

    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _parameters;

    public double LearningRate
    {
        get => _inner.ParamGroups.First().LearningRate;
        set { foreach (var g in _inner.ParamGroups) g.LearningRate = value; }
    }

    public void Step() => _inner.step();

    public void ZeroGrad() => OptimizerParameters.DropGradients(_parameters);

    public OptimizerStateSnapshot ExportState()
    {
        var states = States();
        var steps = new Dictionary<string, long>();
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < _parameters.Count; i++)
        {
            string name = _parameters[i].Name;
            steps[name] = states[i].step;
            tensors[OptimizerStateSnapshot.Key(name, "exp_avg")] = states[i].exp_avg;
            tensors[OptimizerStateSnapshot.Key(name, "exp_avg_sq")] = states[i].exp_avg_sq;
        }
        return new OptimizerStateSnapshot
        {
            Kind = Kind,
            Hyperparameters = new JsonObject
            {
                ["lr"] = LearningRate, ["beta1"] = Settings.Beta1, ["beta2"] = Settings.Beta2,
                ["eps"] = Settings.Epsilon, ["weight_decay"] = Settings.WeightDecay,
            },
            Steps = steps,
            Tensors = tensors,
        };
    }

    public void ImportState(OptimizerStateSnapshot state)
    {
        state.RequireKind(Kind);
        var states = States();
        for (int i = 0; i < _parameters.Count; i++)
        {
            string name = _parameters[i].Name;
            long step = state.StepOf(name);
            state.CopyInto(name, "exp_avg", states[i].exp_avg);
            state.CopyInto(name, "exp_avg_sq", states[i].exp_avg_sq);
            states[i].step = step;
        }
    }

    List<TorchSharp.Modules.AdamW.State> States()
    {
        var sd = _inner.state_dict();
        if (sd.State.Count != _parameters.Count)
            throw new InvalidOperationException($"AdamW holds {sd.State.Count} parameter states for {_parameters.Count} parameters");
        return sd.State.Cast<TorchSharp.Modules.AdamW.State>().ToList();
    }

    public void Dispose() => _inner.Dispose();
}
