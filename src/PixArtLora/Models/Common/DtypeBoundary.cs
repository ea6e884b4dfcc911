using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Common;

/// <summary>
/// Explicit casts where a tensor enters a weight-bearing module. A matmul of mismatched dtypes aborts the process in
/// TorchSharp (and F.linear throws), while frozen weights may be bf16 and the activations fp32, so every call site that
/// feeds a Linear or a convolution goes through here. Elementwise ops need no help: they promote.
/// </summary>
public static class DtypeBoundary
{
    /// <summary>
    /// Runs <paramref name="module"/> on <paramref name="input"/>, first casting the input to the module's weight dtype
    /// when the module is a plain <see cref="Linear"/>, <see cref="Conv2d"/> or affine <see cref="LayerNorm"/>. Any other module (e.g. a LoRA wrapper
    /// that replaced a Linear) receives the input as is and owns its own casts.
    /// </summary>
    public static Tensor Call(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        var weightDtype = module switch
        {
            Linear l => l.weight.dtype,
            Conv2d c => c.weight!.dtype,
            LayerNorm n => ParameterDtype(n, input.dtype),
            _ => input.dtype,
        };
        return module.call(weightDtype == input.dtype ? input : input.to(weightDtype));
    }

    /// <summary>The dtype of the first parameter of <paramref name="module"/>, or <paramref name="fallback"/> if it has none.</summary>
    public static ScalarType ParameterDtype(nn.Module module, ScalarType fallback = ScalarType.Float32)
    {
        foreach (var p in module.parameters()) return p.dtype;
        return fallback;
    }
}
