using PixArtLora.Diffusion;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Diffusion;

public class TrainingObjectiveTests
{
    // ac = 0.5, 0.25, 0.0625 → SNR = 1, 1/3, 1/15.
    static readonly NoiseSchedule Tiny = NoiseSchedule.FromBetas(new[] { 0.5, 0.5, 0.75 });

    [Fact]
    public void MinSnrWeightsMatchHandValues()
    {
        var t = tensor(new long[] { 0, 1, 2 });
        // epsilon: min(SNR, 0.5) / SNR = 0.5, 1, 1.
        TensorAssert.AllClose(TrainingObjective.MinSnrWeights(Tiny, t, 0.5, "epsilon"), tensor(new[] { 0.5f, 1f, 1f }), 1e-7, 0, "eps weights");
        // v: min(SNR, 0.5) / (SNR + 1) = 0.25, (1/3)/(4/3) = 0.25, (1/15)/(16/15) = 0.0625.
        TensorAssert.AllClose(TrainingObjective.MinSnrWeights(Tiny, t, 0.5, "v_prediction"), tensor(new[] { 0.25f, 0.25f, 0.0625f }), 1e-7, 0, "v weights");
    }

    [Fact]
    public void MseIsPerSampleAndMinSnrScalesIt()
    {
        var x0 = zeros(3, 2, 2, 2);
        var noise = zeros(3, 2, 2, 2);
        var t = tensor(new long[] { 0, 1, 2 });
        // Prediction off by 1 everywhere in row 0, by 2 in row 1, exact in row 2; the extra variance channels are ignored.
        var eps = cat(new[] { full(new long[] { 1, 2, 2, 2 }, 1f), full(new long[] { 1, 2, 2, 2 }, 2f), zeros(1, 2, 2, 2) }, 0);
        var output = cat(new[] { eps, full(new long[] { 3, 2, 2, 2 }, 9f) }, 1);
        using var plain = new TrainingObjective(Tiny).Losses(output, x0, x0, noise, t);
        TensorAssert.AllClose(plain.Mse, tensor(new[] { 1f, 4f, 0f }), 1e-6, 0, "mse");
        TensorAssert.AllClose(plain.Loss, plain.Mse, 0, 0, "loss = mse");
        Assert.Null(plain.Vb);
        using var weighted = new TrainingObjective(Tiny, minSnrGamma: 0.5).Losses(output, x0, x0, noise, t);
        TensorAssert.AllClose(weighted.Loss, tensor(new[] { 0.5f, 4f, 0f }), 1e-6, 0, "min-snr weighted");
    }

    [Fact]
    public void VPredictionTargetsTheVelocity()
    {
        var objective = new TrainingObjective(Tiny, predictionType: "v_prediction");
        var x0 = ones(1, 1, 1, 1);
        var noise = full(new long[] { 1, 1, 1, 1 }, 2f);
        // t = 1: v = sqrt(0.25) · 2 - sqrt(0.75) · 1.
        var target = objective.Target(x0, noise, tensor(new long[] { 1 }));
        Assert.Equal(1 - Math.Sqrt(0.75), target.item<float>(), 6);
    }

    [Fact]
    public void NoiseOffsetShiftsEachSampleAndChannelByAConstant()
    {
        var noise = zeros(2, 3, 4, 4);
        var perChannel = arange(6, float32).reshape(2, 3, 1, 1);
        var shifted = TrainingObjective.ApplyNoiseOffset(noise, perChannel, 0.1);
        TensorAssert.AllClose(shifted[1, 2], full(new long[] { 4, 4 }, 0.5f), 1e-6, 0, "b=1, c=2 shifted by 0.1 · 5");

        // Statistically: without an offset the per-channel spatial mean of 64x64 noise has std 1/64; with offset 0.5 about 0.5.
        var x0 = zeros(64, 4, 64, 64);
        double StdOfChannelMeans(double offset) =>
            new TrainingObjective(noiseOffset: offset).SampleNoise(x0, new Generator(11)).mean(new long[] { 2, 3 }).std().item<float>();
        Assert.InRange(StdOfChannelMeans(0), 0.01, 0.025);
        Assert.InRange(StdOfChannelMeans(0.5), 0.4, 0.6);
    }

    [Fact]
    public void TimestepsAreUniformOverTheTrainingRangeAndSeeded()
    {
        var objective = new TrainingObjective(NoiseSchedule.FromBetas(Enumerable.Repeat(0.1, 10)));
        var t = objective.SampleTimesteps(2000, new Generator(4));
        Assert.Equal(ScalarType.Int64, t.dtype);
        var counts = bincount(t, minlength: 10);
        Assert.Equal(10, counts.shape[0]);
        Assert.True(counts.min().item<long>() > 150, "every timestep drawn about 200 times");
        TensorAssert.Equal(objective.SampleTimesteps(2000, new Generator(4)), t, "same seed");
    }

    [Fact]
    public void TheVariationalBoundTrainsOnlyTheVarianceChannels()
    {
        var objective = new TrainingObjective(loss: DiffusionLoss.MseVb);
        var x0 = randn(new long[] { 2, 4, 3, 3 }, generator: new Generator(1)).clamp(-1, 1);
        var noise = randn(new long[] { 2, 4, 3, 3 }, generator: new Generator(2));
        var t = tensor(new long[] { 0, 400 });
        var xt = objective.AddNoise(x0, noise, t);
        var output = randn(new long[] { 2, 8, 3, 3 }, generator: new Generator(3)).requires_grad_(true);
        using var terms = objective.Losses(output, x0, xt, noise, t);
        terms.Loss.mean().backward();
        // d mean_b(mse_b) / d eps = -2 (noise - eps) / (C·H·W · B): the bound adds nothing to the eps channels.
        var expectedEpsGrad = -2 * (noise - output.detach().narrow(1, 0, 4)) / (36 * 2);
        TensorAssert.AllClose(output.grad!.narrow(1, 0, 4), expectedEpsGrad, 1e-7, 1e-5, "eps gradient");
        Assert.True(output.grad!.narrow(1, 4, 4).abs().sum().item<float>() > 0, "the variance channels get a gradient");
        Assert.True(terms.Vb!.min().item<float>() >= 0, "KL and NLL are non-negative");
    }

    [Fact]
    public void MseVbRequiresTheLearnedVarianceChannels()
    {
        var objective = new TrainingObjective(loss: TrainingObjective.ParseLoss("mse+vb"));
        var e = Assert.Throws<ArgumentException>(() => objective.Losses(zeros(1, 4, 2, 2), zeros(1, 4, 2, 2), zeros(1, 4, 2, 2), zeros(1, 4, 2, 2), tensor(new long[] { 5 })));
        Assert.Contains("8 channels", e.Message);
        Assert.Contains("expected mse or mse+vb", Assert.Throws<ArgumentException>(() => TrainingObjective.ParseLoss("l1")).Message);
    }
}
