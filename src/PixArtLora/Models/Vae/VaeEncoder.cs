using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' VAE <c>Encoder</c> (autoencoders/vae.py): conv_in, down blocks, mid-block, GroupNorm, SiLU and
/// conv_out to 2·latent_channels moments (mean and log-variance, <c>double_z=True</c>).
/// </summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    /// <summary>Every GroupNorm in the VAE uses this epsilon (diffusers passes resnet_eps=1e-6 throughout).</summary>
    internal const double NormEps = 1e-6;

#pragma warning disable IDE1006 // Hugging Face key names
    readonly VaeConv2d conv_in;
    readonly ModuleList<DownEncoderBlock2D> down_blocks;
    readonly UNetMidBlock2D mid_block;
    readonly GroupNorm conv_norm_out;
    readonly VaeConv2d conv_out;
#pragma warning restore IDE1006

    public VaeEncoder(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(VaeEncoder))
    {
        var ch = config.BlockOutChannels;
        int groups = config.NormNumGroups;
        conv_in = new VaeConv2d(config.InChannels, ch[0], 3, stride: 1, padding: 1, device: device, dtype: dtype);
        var blocks = new DownEncoderBlock2D[ch.Length];
        for (int i = 0; i < ch.Length; i++)
            blocks[i] = new DownEncoderBlock2D(i == 0 ? ch[0] : ch[i - 1], ch[i], config.LayersPerBlock, groups, NormEps,
                config.ActFn, addDownsample: i < ch.Length - 1, device, dtype);
        down_blocks = nn.ModuleList(blocks);
        mid_block = new UNetMidBlock2D(ch[^1], groups, NormEps, config.ActFn, config.MidBlockAddAttention, device, dtype);
        conv_norm_out = InitializedGroupNorm.Create(groups, ch[^1], NormEps, device, dtype);
        conv_out = new VaeConv2d(ch[^1], 2 * config.LatentChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <summary>The forward pass; <paramref name="tap"/> sees named intermediates (for locating parity mismatches).</summary>
    internal Tensor Forward(Tensor input, Action<string, Tensor>? tap)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.call(input);
        foreach (var block in down_blocks) h = ResnetBlock2D.Replace(h, block.call(h));
        h = ResnetBlock2D.Replace(h, mid_block.call(h));
        tap?.Invoke("mid_block", h);
        h = ResnetBlock2D.Replace(h, conv_norm_out.call(h));
        // conv_act is nn.SiLU() whatever act_fn says, in diffusers' Encoder.
        h = ResnetBlock2D.Replace(h, nn.functional.silu(h));
        h = ResnetBlock2D.Replace(h, conv_out.call(h));
        return h.MoveToOuterDisposeScope();
    }
}
