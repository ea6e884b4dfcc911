using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// <c>nn.GroupNorm</c> with its affine parameters set to ones and zeros. TorchSharp 0.107's GroupNorm allocates them
/// with <c>torch.empty</c> and never initialises them (LayerNorm does), so a freshly built model would hold garbage.
/// </summary>
internal static class InitializedGroupNorm
{
    public static GroupNorm Create(long groups, long channels, double eps, Device? device, ScalarType? dtype)
    {
        var norm = nn.GroupNorm(groups, channels, eps, affine: true, device: device, dtype: dtype);
        using var noGrad = no_grad();
        nn.init.ones_(norm.weight);
        if (norm.bias is not null) nn.init.zeros_(norm.bias);
        return norm;
    }
}
