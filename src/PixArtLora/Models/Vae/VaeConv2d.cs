using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// A 2-D convolution (keys <c>weight</c>, <c>bias</c>, initialised as <c>nn.Conv2d</c>) that works around a libtorch CPU bug:
/// with libtorch 2.10 on this project's CPUs (AVX-512 BF16), a bfloat16 convolution with a kernel larger than 1×1 returns
/// wrong values (30–100 % relative error) when a channel count is not a multiple of 16, e.g. the VAE's 128→3 and
/// 512→8 output convs. Such convolutions are computed in float32 and cast back; every other one runs as is.
/// </summary>
public sealed class VaeConv2d : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly Parameter weight;
    readonly Parameter bias;
#pragma warning restore IDE1006
    readonly long[] _stride, _padding;
    readonly bool _channelsAwkward;

    public VaeConv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long padding = 0,
        Device? device = null, ScalarType? dtype = null) : base(nameof(VaeConv2d))
    {
        weight = new Parameter(empty(new[] { outChannels, inChannels, kernelSize, kernelSize }, dtype, device));
        bias = new Parameter(empty(new[] { outChannels }, dtype, device));
        using (no_grad())
        {
            // nn.Conv2d.reset_parameters: kaiming_uniform(a = √5) weights, biases uniform in ±1/√fan_in
            nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
            double bound = 1 / Math.Sqrt(inChannels * kernelSize * kernelSize);
            nn.init.uniform_(bias, -bound, bound);
        }
        _stride = new[] { stride, stride };
        _padding = new[] { padding, padding };
        _channelsAwkward = kernelSize > 1 && (inChannels % 16 != 0 || outChannels % 16 != 0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        if (!(_channelsAwkward && input.dtype == ScalarType.BFloat16 && input.device_type == DeviceType.CPU))
            return nn.functional.conv2d(input, weight, bias, _stride, _padding);
        using var scope = NewDisposeScope();
        var result = nn.functional.conv2d(input.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias.to(ScalarType.Float32), _stride, _padding);
        return result.to(input.dtype).MoveToOuterDisposeScope();
    }
}
