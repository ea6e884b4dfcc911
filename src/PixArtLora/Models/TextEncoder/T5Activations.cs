using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

/// <summary>The activations a T5 feed-forward may name (transformers' ACT2FN entries that T5 configs use).</summary>
public static class T5Activations
{
    static readonly double Sqrt2OverPi = Math.Sqrt(2.0 / Math.PI);

    public static IReadOnlyList<string> Names { get; } = new[] { "gelu_new", "gelu_pytorch_tanh", "gelu", "relu", "silu", "swish" };

    public static bool IsKnown(string name) => Names.Contains(name);

    public static Tensor Apply(string name, Tensor x) => name switch
    {
        // transformers' NewGELUActivation, written out as it is there (same rounding as the reference, rather
        // than libtorch's fused tanh-GELU, whose last bits may differ).
        "gelu_new" => 0.5 * x * (1.0 + torch.tanh(Sqrt2OverPi * (x + 0.044715 * torch.pow(x, 3.0)))),
        "gelu_pytorch_tanh" => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "gelu" => nn.functional.gelu(x),
        "relu" => nn.functional.relu(x),
        "silu" or "swish" => nn.functional.silu(x),
        _ => throw new ArgumentException($"unsupported T5 activation '{name}'; expected one of {string.Join(", ", Names)}"),
    };
}
