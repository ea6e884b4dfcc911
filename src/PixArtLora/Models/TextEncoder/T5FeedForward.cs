using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

#pragma warning disable IDE1006 // fields carry the Hugging Face names so that state_dict() gives the published keys

/// <summary>
/// The feed-forward (transformers' <c>T5DenseGatedActDense</c> for "gated-*" configs: act(wi_0 x) ⊙ wi_1 x → wo;
/// <c>T5DenseActDense</c> otherwise: act(wi x) → wo). The input of wo is cast to wo's dtype, which matters when
/// wo is kept in float32 beside half-precision weights.
/// </summary>
public sealed class T5DenseReluDense : nn.Module<Tensor, Tensor>
{
    readonly Linear? wi, wi_0, wi_1;
    readonly Linear wo;
    readonly string _activation;

    public T5DenseReluDense(T5Config config, Device device, ScalarType dtype, ScalarType woDtype) : base(config.IsGatedAct ? "T5DenseGatedActDense" : "T5DenseActDense")
    {
        _activation = config.ActivationName;
        if (config.IsGatedAct)
        {
            wi_0 = T5Init.Linear(config.DModel, config.DFf, device, dtype);
            wi_1 = T5Init.Linear(config.DModel, config.DFf, device, dtype);
        }
        else
        {
            wi = T5Init.Linear(config.DModel, config.DFf, device, dtype);
        }
        wo = T5Init.Linear(config.DFf, config.DModel, device, woDtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hiddenStates)
    {
        using var scope = NewDisposeScope();
        var hidden = wi is not null
            ? T5Activations.Apply(_activation, wi.forward(hiddenStates))
            : T5Activations.Apply(_activation, wi_0!.forward(hiddenStates)) * wi_1!.forward(hiddenStates);
        if (hidden.dtype != wo.weight.dtype) hidden = hidden.to(wo.weight.dtype);
        return wo.forward(hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm residual feed-forward sub-layer (transformers' <c>T5LayerFF</c>).</summary>
public sealed class T5LayerFF : nn.Module<Tensor, Tensor>
{
    readonly T5DenseReluDense DenseReluDense;
    readonly T5LayerNorm layer_norm;

    public T5LayerFF(T5Config config, Device device, ScalarType dtype, ScalarType woDtype) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseReluDense(config, device, dtype, woDtype);
        layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hiddenStates)
    {
        using var scope = NewDisposeScope();
        var forwarded = DenseReluDense.forward(layer_norm.forward(hiddenStates));
        return (hiddenStates + forwarded).MoveToOuterDisposeScope();
    }
}
