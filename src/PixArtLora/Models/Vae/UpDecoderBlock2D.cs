using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>UpDecoderBlock2D</c> (unet_2d_blocks.py): <c>layers_per_block + 1</c> resnets, then an
/// <see cref="Upsample2D"/> in every block but the last.
/// </summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Upsample2D>? upsamplers;
#pragma warning restore IDE1006

    public UpDecoderBlock2D(long inChannels, long outChannels, int layers, long groups, double eps, string actFn,
        bool addUpsample, Device? device = null, ScalarType? dtype = null) : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, eps, actFn, device, dtype))
            .ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].call(input);
        for (int i = 1; i < resnets.Count; i++) h = ResnetBlock2D.Replace(h, resnets[i].call(h));
        if (upsamplers != null) h = ResnetBlock2D.Replace(h, upsamplers[0].call(h));
        return h.MoveToOuterDisposeScope();
    }
}
