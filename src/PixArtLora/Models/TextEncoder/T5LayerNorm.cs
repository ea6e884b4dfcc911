using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// T5's RMS norm (transformers' <c>T5LayerNorm</c>): scale only, no mean subtraction and no bias. The mean of
/// squares is taken in float32 whatever the input dtype; the normalised value goes back to the weight's dtype
/// when that is half precision, then is scaled.
/// </summary>
public sealed class T5LayerNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face parameter name
    readonly Parameter weight;
#pragma warning restore IDE1006
    readonly double _eps;

    public T5LayerNorm(long hiddenSize, double eps, Device device, ScalarType dtype) : base(nameof(T5LayerNorm))
    {
        weight = T5Init.NewParameter(new[] { hiddenSize }, device, dtype);
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor hiddenStates)
    {
        using var scope = NewDisposeScope();
        var variance = hiddenStates.to(float32).pow(2).mean(new long[] { -1 }, keepdim: true);
        // A half-precision input times a float32 factor promotes to float32, as in the reference.
        var normed = hiddenStates * rsqrt(variance + _eps);
        if (weight.dtype is ScalarType.Float16 or ScalarType.BFloat16) normed = normed.to(weight.dtype);
        return (weight * normed).MoveToOuterDisposeScope();
    }
}
