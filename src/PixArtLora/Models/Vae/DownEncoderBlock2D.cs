using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>DownEncoderBlock2D</c> (unet_2d_blocks.py): <c>layers_per_block</c> resnets, then a
/// <see cref="Downsample2D"/> in every block but the last.
/// </summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Downsample2D>? downsamplers;
#pragma warning restore IDE1006

    public DownEncoderBlock2D(long inChannels, long outChannels, int layers, long groups, double eps, string actFn,
        bool addDownsample, Device? device = null, ScalarType? dtype = null) : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, eps, actFn, device, dtype))
            .ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].call(input);
        for (int i = 1; i < resnets.Count; i++) h = ResnetBlock2D.Replace(h, resnets[i].call(h));
        if (downsamplers != null) h = ResnetBlock2D.Replace(h, downsamplers[0].call(h));
        return h.MoveToOuterDisposeScope();
    }
}
