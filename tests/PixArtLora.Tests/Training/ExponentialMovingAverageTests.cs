using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

public class ExponentialMovingAverageTests
{
    [Fact]
    public void ConstantDecayAveragesAsPixArtDoes()
    {
        using var scope = NewDisposeScope();
        var p = new Parameter(tensor(new float[] { 1, 2 }));
        using var ema = new ExponentialMovingAverage(new[] { ("p", p) }, new EmaSettings(Decay: 0.9));
        Set(p, 3, 4);
        ema.Update(); // 0.9 [1, 2] + 0.1 [3, 4]
        TensorAssert.AllClose(ema.Shadow["p"], tensor(new[] { 1.2, 2.2 }), 1e-6, 0, "after one update");
        Set(p, 5, 6);
        ema.Update(); // 0.9 [1.2, 2.2] + 0.1 [5, 6]
        TensorAssert.AllClose(ema.Shadow["p"], tensor(new[] { 1.58, 2.58 }), 1e-6, 0, "after two updates");
        Assert.Equal(2, ema.OptimizationStep);
    }

    [Fact]
    public void WarmupDecaysFollowDiffusersEmaModel()
    {
        var ramp = new ExponentialMovingAverage(Array.Empty<(string, Parameter)>(), new EmaSettings(Warmup: EmaWarmup.Ramp));
        Assert.Equal(0.0, ramp.DecayAt(1));                      // first update copies the weights
        Assert.Equal(2.0 / 11.0, ramp.DecayAt(2), 1e-15);        // (1 + 1) / (10 + 1)
        Assert.Equal(1001.0 / 1010.0, ramp.DecayAt(1001), 1e-15);
        Assert.Equal(0.9999, ramp.DecayAt(10_000_000), 1e-15);   // capped at the decay

        var power = new ExponentialMovingAverage(Array.Empty<(string, Parameter)>(), new EmaSettings(Warmup: EmaWarmup.InversePower));
        Assert.Equal(1 - Math.Pow(2, -2.0 / 3.0), power.DecayAt(2), 1e-15); // 1 - (1 + 1)^(-2/3) = 0.370039...
        Assert.Equal(0.37003947505256, power.DecayAt(2), 1e-12);

        var delayed = new ExponentialMovingAverage(Array.Empty<(string, Parameter)>(),
            new EmaSettings(Warmup: EmaWarmup.Ramp, UpdateAfterStep: 5));
        Assert.Equal(0.0, delayed.DecayAt(6));
        Assert.Equal(2.0 / 11.0, delayed.DecayAt(7), 1e-15);

        var constant = new ExponentialMovingAverage(Array.Empty<(string, Parameter)>(), new EmaSettings());
        Assert.Equal(0.9999, constant.DecayAt(1));
    }

    [Fact]
    public void FrozenWeightsAreCopiedNotAveraged()
    {
        using var scope = NewDisposeScope();
        var frozen = new Parameter(zeros(2), requires_grad: false);
        using var ema = new ExponentialMovingAverage(new[] { ("f", frozen) }, new EmaSettings(Decay: 0.5));
        using (no_grad()) frozen.fill_(7);
        ema.Update();
        TensorAssert.Equal(ema.Shadow["f"], full(2, 7f), "frozen");
    }

    [Fact]
    public void SavesLoadsAndSwapsExactly()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("ema");
        var p = new Parameter(randn(4, 3));
        using var ema = new ExponentialMovingAverage(new[] { ("layer.weight", p) }, new EmaSettings(Decay: 0.99, Warmup: EmaWarmup.Ramp));
        for (int i = 0; i < 3; i++) { using (no_grad()) p.add_(randn(4, 3)); ema.Update(); }
        ema.Save(dir);

        var q = new Parameter(randn(4, 3));
        using var loaded = new ExponentialMovingAverage(new[] { ("layer.weight", q) }, new EmaSettings(Decay: 0.99, Warmup: EmaWarmup.Ramp));
        loaded.Load(dir);
        Assert.Equal(3, loaded.OptimizationStep);
        TensorAssert.Equal(loaded.Shadow["layer.weight"], ema.Shadow["layer.weight"], "loaded shadow");

        var raw = q.detach().clone();
        loaded.SwapIn();
        TensorAssert.Equal(q, ema.Shadow["layer.weight"], "EMA weights swapped in");
        loaded.SwapOut();
        TensorAssert.Equal(q, raw, "raw weights restored");
    }

    static void Set(Parameter p, float a, float b)
    {
        using var _ = no_grad();
        p.copy_(tensor(new[] { a, b }));
    }
}
