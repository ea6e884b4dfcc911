using PixArtLora.Diffusion;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Diffusion;

public class GuidanceTests
{
    /// <summary>A [2, 8, 1, 1] output: row 0 (cond) has channel k = 10 + k, row 1 (uncond) channel k = k.</summary>
    static Tensor CondUncond()
    {
        var cond = arange(8, float32).add(10).reshape(1, 8, 1, 1);
        var uncond = arange(8, float32).reshape(1, 8, 1, 1);
        return cat(new[] { cond, uncond }, 0);
    }

    [Fact]
    public void AllChannelsGuidesEveryEpsChannelAndKeepsTheConditionalVariance()
    {
        var guided = new ClassifierFreeGuidance(4.5).Combine(CondUncond(), latentChannels: 4);
        // uncond + 4.5 · (cond - uncond) = k + 45 for eps channels; channels 4..7 from cond = 10 + k.
        var expected = tensor(new float[] { 45, 46, 47, 48, 14, 15, 16, 17 }).reshape(1, 8, 1, 1);
        TensorAssert.AllClose(guided, expected, 1e-6, 0, "all-channel guidance");
    }

    [Fact]
    public void OfficialGuidesOnlyTheFirstThreeChannelsAndKeepsEachRowsRest()
    {
        var guided = new ClassifierFreeGuidance(4.5, GuidanceMode.Official).Combine(CondUncond(), latentChannels: 4);
        var expected = tensor(new float[]
        {
            45, 46, 47, 13, 14, 15, 16, 17,   // cond row: guided 0..2, own channels 3..7
            45, 46, 47, 3, 4, 5, 6, 7,        // uncond row: guided 0..2, own channels 3..7
        }).reshape(2, 8, 1, 1);
        TensorAssert.AllClose(guided, expected, 1e-6, 0, "official guidance");
    }

    [Fact]
    public void ScaleOneIsTheConditionalPrediction()
    {
        var output = CondUncond();
        var guided = new ClassifierFreeGuidance(1.0).Combine(output, 4);
        TensorAssert.AllClose(guided, output[0].unsqueeze(0), 1e-6, 0, "scale 1");
    }

    [Fact]
    public void TheLoopGivesTheModelTheDoubledBatchConditionalRowsFirst()
    {
        using var sampler = SamplerFactory.Create("ddim", 3);
        var seen = new List<long>();
        var x = randn(2, 4, 2, 2);
        var result = SamplingLoop.Run(sampler, x, (input, t) =>
        {
            seen.Add(input.shape[0]);
            Assert.Equal(input.shape[0], t.shape[0]);
            TensorAssert.AllClose(input.narrow(0, 0, 2), input.narrow(0, 2, 2), 0, 0, "both halves are the same latents");
            return zeros_like(input);
        }, guidance: new ClassifierFreeGuidance(3.0));
        Assert.Equal(new long[] { 4, 4, 4 }, seen);
        Assert.Equal(new long[] { 2, 4, 2, 2 }, result.shape);
    }
}
