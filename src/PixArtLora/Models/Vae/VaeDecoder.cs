using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' VAE <c>Decoder</c> (autoencoders/vae.py): conv_in, mid-block, up blocks over the reversed
/// channel list, GroupNorm, SiLU and conv_out to image channels.
/// </summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly VaeConv2d conv_in;
    readonly ModuleList<UpDecoderBlock2D> up_blocks;
    readonly UNetMidBlock2D mid_block;
    readonly GroupNorm conv_norm_out;
    readonly VaeConv2d conv_out;
#pragma warning restore IDE1006

    public VaeDecoder(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(VaeDecoder))
    {
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        int groups = config.NormNumGroups;
        double eps = VaeEncoder.NormEps;
        conv_in = new VaeConv2d(config.LatentChannels, reversed[0], 3, stride: 1, padding: 1, device: device, dtype: dtype);
        mid_block = new UNetMidBlock2D(reversed[0], groups, eps, config.ActFn, config.MidBlockAddAttention, device, dtype);
        var blocks = new UpDecoderBlock2D[reversed.Length];
        for (int i = 0; i < reversed.Length; i++)
            blocks[i] = new UpDecoderBlock2D(i == 0 ? reversed[0] : reversed[i - 1], reversed[i], config.LayersPerBlock + 1,
                groups, eps, config.ActFn, addUpsample: i < reversed.Length - 1, device, dtype);
        up_blocks = nn.ModuleList(blocks);
        conv_norm_out = InitializedGroupNorm.Create(groups, reversed[^1], eps, device, dtype);
        conv_out = new VaeConv2d(reversed[^1], config.OutChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <summary>The forward pass; <paramref name="tap"/> sees named intermediates (for locating parity mismatches).</summary>
    internal Tensor Forward(Tensor input, Action<string, Tensor>? tap)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.call(input);
        h = ResnetBlock2D.Replace(h, mid_block.call(h));
        tap?.Invoke("mid_block", h);
        foreach (var block in up_blocks) h = ResnetBlock2D.Replace(h, block.call(h));
        h = ResnetBlock2D.Replace(h, conv_norm_out.call(h));
        // conv_act is nn.SiLU() whatever act_fn says, in diffusers' Decoder.
        h = ResnetBlock2D.Replace(h, nn.functional.silu(h));
        h = ResnetBlock2D.Replace(h, conv_out.call(h));
        return h.MoveToOuterDisposeScope();
    }
}
