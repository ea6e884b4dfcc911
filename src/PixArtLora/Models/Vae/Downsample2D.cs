using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>Downsample2D</c> as the VAE encoder builds it (downsampling.py, <c>padding=0</c>): the input is
/// padded by one zero on the right and bottom only, then a stride-2 3x3 conv without padding halves each side.
/// </summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly VaeConv2d conv;
#pragma warning restore IDE1006

    public Downsample2D(long channels, Device? device = null, ScalarType? dtype = null) : base(nameof(Downsample2D))
    {
        conv = new VaeConv2d(channels, channels, 3, stride: 2, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // F.pad order is (left, right, top, bottom): asymmetric, as the original LDM encoder.
        var padded = nn.functional.pad(input, new long[] { 0, 1, 0, 1 }, PaddingModes.Constant, 0);
        return conv.call(padded).MoveToOuterDisposeScope();
    }
}
