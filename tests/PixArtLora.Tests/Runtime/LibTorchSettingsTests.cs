using PixArtLora.Runtime;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Runtime;

public class LibTorchSettingsTests
{
    [Fact]
    public void NnpackIsSwitchedOffAndConvolutionsStillRun()
    {
        // The switch is read back from libtorch's context, so a wrong symbol or calling convention fails here.
        Assert.True(LibTorchSettings.DisableNnpack());
        using var x = ones(1, 2, 8, 8);
        using var w = ones(3, 2, 3, 3);
        using var y = nn.functional.conv2d(x, w, padding: new long[] { 1, 1 });
        Assert.Equal(18f, y[0, 0, 4, 4].item<float>());   // an interior pixel sums 2 channels × 3 × 3 ones
    }
}
