using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>The activations diffusers' <c>get_activation</c> accepts for a VAE's <c>act_fn</c>.</summary>
public static class VaeActivation
{
    static readonly string[] Names = { "silu", "swish", "mish", "gelu", "relu" };

    public static string KnownNames => string.Join(", ", Names.Select(n => $"'{n}'"));

    public static bool IsKnown(string? name) => name != null && Names.Contains(name.ToLowerInvariant());

    /// <summary>The activation function named <paramref name="name"/> (case-insensitive, as diffusers).</summary>
    public static Func<Tensor, Tensor> Get(string name) => name.ToLowerInvariant() switch
    {
        "silu" or "swish" => x => nn.functional.silu(x),
        "mish" => x => nn.functional.mish(x),
        "gelu" => x => nn.functional.gelu(x),
        "relu" => x => nn.functional.relu(x),
        _ => throw new ArgumentException($"act_fn '{name}' is not supported, expected one of {KnownNames}"),
    };
}
