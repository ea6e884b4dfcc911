using TorchSharp;
using PixArtLora.Models.Vae;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Vae;

public class VaeConv2dTests
{
    [Theory]
    [InlineData(128, 3, 1)]  // decoder conv_out
    [InlineData(512, 8, 1)]  // encoder conv_out
    [InlineData(8, 8, 2)]
    [InlineData(32, 32, 1)]
    public void BFloat16AgreesWithFloat32ForEveryChannelCount(int inChannels, int outChannels, int stride)
    {
        // Guards the libtorch CPU bf16 convolution bug VaeConv2d works around (wrong values when channels % 16 != 0).
        using var scope = NewDisposeScope();
        manual_seed(7);
        var conv = new VaeConv2d(inChannels, outChannels, 3, stride, padding: 1);
        var x = randn(1, inChannels, 12, 12).bfloat16().to(float32);
        var expected = conv.call(x);
        conv.to(ScalarType.BFloat16);
        var actual = conv.call(x.bfloat16());
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        double rel = ((actual.to(float32) - expected).abs().max() / expected.abs().max()).item<float>();
        Assert.True(rel < 0.03, $"bf16 conv {inChannels}->{outChannels}: max error {rel:P1} of the output scale");
    }
}
