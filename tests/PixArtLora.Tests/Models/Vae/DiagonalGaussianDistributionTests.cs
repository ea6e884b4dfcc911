using PixArtLora.Models.Vae;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Vae;

public class DiagonalGaussianDistributionTests
{
    [Fact]
    public void MomentsSplitIntoMeanAndClampedLogVar()
    {
        using var scope = NewDisposeScope();
        var mean = tensor(new float[] { 0.5f, -1f, 2f, 3f }).reshape(1, 2, 1, 2);
        var logVar = tensor(new float[] { -40f, 25f, 0f, -2f }).reshape(1, 2, 1, 2);
        using var p = DiagonalGaussianDistribution.FromMoments(cat(new[] { mean, logVar }, 1));
        TensorAssert.Equal(p.Mean, mean, "mean");
        TensorAssert.Equal(p.LogVar, tensor(new float[] { -30f, 20f, 0f, -2f }).reshape(1, 2, 1, 2), "logvar");
        TensorAssert.AllClose(p.Std, tensor(new[] { Math.Exp(-15), Math.Exp(10), 1.0, Math.Exp(-1) }).reshape(1, 2, 1, 2), 0, 1e-6, "std");
        TensorAssert.Equal(p.Mode(), mean, "mode");
    }

    [Fact]
    public void SampleIsMeanPlusStdTimesTheGeneratorsNormalDraw()
    {
        using var scope = NewDisposeScope();
        var mean = randn(2, 4, 3, 5);
        var std = rand(2, 4, 3, 5) + 0.1;
        using var p = DiagonalGaussianDistribution.FromMeanStd(mean.clone(), std.clone());
        var sample = p.Sample(new Generator(1234));
        var eps = randn(new long[] { 2, 4, 3, 5 }, generator: new Generator(1234));
        TensorAssert.AllClose(sample, mean + std * eps, 0, 1e-7, "sample");
        Assert.Equal(ScalarType.Float32, sample.dtype);
        var other = p.Sample(new Generator(1235));
        Assert.True((other - sample).abs().max().item<float>() > 0.01f);
    }

    [Fact]
    public void MismatchedMeanAndStdAreRejected()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => DiagonalGaussianDistribution.FromMeanStd(zeros(1, 4, 2, 2), zeros(1, 4, 2, 3)));
        Assert.Throws<ArgumentException>(() => DiagonalGaussianDistribution.FromMoments(zeros(1, 3, 2, 2)));
    }
}
