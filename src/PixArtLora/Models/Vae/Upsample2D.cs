using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>diffusers' <c>Upsample2D</c> as the VAE decoder builds it (upsampling.py): nearest-neighbour ×2, then a 3x3 conv.</summary>
public sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly VaeConv2d conv;
#pragma warning restore IDE1006

    public Upsample2D(long channels, Device? device = null, ScalarType? dtype = null) : base(nameof(Upsample2D))
    {
        conv = new VaeConv2d(channels, channels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(input, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest);
        return conv.call(up).MoveToOuterDisposeScope();
    }
}
