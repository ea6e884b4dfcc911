using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> as the VAE uses it (resnet.py): no time embedding, pre-norm,
/// GroupNorm → act → conv3x3 → GroupNorm → act → conv3x3, plus a 1x1 <c>conv_shortcut</c> when the
/// channel count changes; output scale factor 1 and dropout 0 in every VAE block.
/// </summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly GroupNorm norm1;
    readonly VaeConv2d conv1;
    readonly GroupNorm norm2;
    readonly VaeConv2d conv2;
    readonly VaeConv2d? conv_shortcut;
#pragma warning restore IDE1006
    readonly Func<Tensor, Tensor> _act;

    public ResnetBlock2D(long inChannels, long outChannels, long groups, double eps, string actFn,
        Device? device = null, ScalarType? dtype = null) : base(nameof(ResnetBlock2D))
    {
        norm1 = InitializedGroupNorm.Create(groups, inChannels, eps, device, dtype);
        conv1 = new VaeConv2d(inChannels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        norm2 = InitializedGroupNorm.Create(groups, outChannels, eps, device, dtype);
        conv2 = new VaeConv2d(outChannels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        if (inChannels != outChannels)
            conv_shortcut = new VaeConv2d(inChannels, outChannels, 1, stride: 1, device: device, dtype: dtype);
        _act = VaeActivation.Get(actFn);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // Intermediates are released as soon as the next one exists: at a 1024-pixel tile one of them is
        // hundreds of MB, and a dispose scope alone would keep every one alive until the block returns.
        var h = norm1.call(input);
        h = Replace(h, _act(h));
        h = Replace(h, conv1.call(h));
        h = Replace(h, norm2.call(h));
        h = Replace(h, _act(h));
        h = Replace(h, conv2.call(h));
        var result = conv_shortcut is null ? input + h : Shortcut(input, h);
        return result.MoveToOuterDisposeScope();
    }

    Tensor Shortcut(Tensor input, Tensor h)
    {
        using var s = conv_shortcut!.call(input);
        return s + h;
    }

    internal static Tensor Replace(Tensor previous, Tensor next)
    {
        previous.Dispose();
        return next;
    }
}
