using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>UNetMidBlock2D</c> as the VAE builds it (unet_2d_blocks.py): resnet, attention, resnet, at the
/// lowest resolution. Without <c>mid_block_add_attention</c> it is two resnets and no <c>attentions</c> keys.
/// </summary>
public sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly ModuleList<MidBlockAttention>? attentions;
    readonly ModuleList<ResnetBlock2D> resnets;
#pragma warning restore IDE1006

    public UNetMidBlock2D(long channels, long groups, double eps, string actFn, bool addAttention,
        Device? device = null, ScalarType? dtype = null) : base(nameof(UNetMidBlock2D))
    {
        resnets = nn.ModuleList(
            new ResnetBlock2D(channels, channels, groups, eps, actFn, device, dtype),
            new ResnetBlock2D(channels, channels, groups, eps, actFn, device, dtype));
        if (addAttention) attentions = nn.ModuleList(new MidBlockAttention(channels, groups, eps, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].call(input);
        if (attentions != null) h = ResnetBlock2D.Replace(h, attentions[0].call(h));
        h = ResnetBlock2D.Replace(h, resnets[1].call(h));
        return h.MoveToOuterDisposeScope();
    }
}
