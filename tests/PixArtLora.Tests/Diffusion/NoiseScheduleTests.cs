using PixArtLora.Diffusion;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Diffusion;

public class NoiseScheduleTests
{
    [Fact]
    public void PixArtDefaultIsLinearFrom1e4To002Over1000Steps()
    {
        var s = NoiseSchedule.PixArtDefault();
        Assert.Equal(1000, s.TrainTimesteps);
        Assert.Equal(1e-4, s.Betas[0], 15);
        Assert.Equal(0.02, s.Betas[999], 15);
        Assert.Equal(1e-4 + (0.02 - 1e-4) / 999 * 500, s.Betas[500], 15);
        // alphas_cumprod as exp(sum log(1 - beta)), a different evaluation of the same product.
        double logSum = 0;
        for (int i = 0; i < 1000; i++) logSum += Math.Log(1 - (1e-4 + (0.02 - 1e-4) * i / 999));
        Assert.Equal(Math.Exp(logSum), s.AlphasCumprod[999], 12);
        Assert.Equal(1 - 1e-4, s.AlphasCumprod[0], 15);
    }

    [Fact]
    public void ScaledLinearSquaresEvenlySpacedRoots()
    {
        var s = NoiseSchedule.ScaledLinear(0.00085, 0.012, 1000);
        Assert.Equal(0.00085, s.Betas[0], 12);
        Assert.Equal(0.012, s.Betas[999], 12);
        double mid = (Math.Sqrt(0.00085) + Math.Sqrt(0.012)) / 2;
        Assert.Equal(mid * mid, (s.Betas[499] + s.Betas[500]) / 2, 6);
    }

    [Fact]
    public void SquaredCosineCumulativeAlphasFollowTheClosedForm()
    {
        const int T = 1000;
        var s = NoiseSchedule.SquaredCosCapV2(T);
        static double F(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        // Without the 0.999 cap the product telescopes to alpha_bar((i+1)/T) / alpha_bar(0).
        foreach (int i in new[] { 0, 10, 500, 900, 990 })
            Assert.Equal(F((i + 1.0) / T) / F(0), s.AlphasCumprod[i], 10);
        Assert.Equal(0.999, s.Betas[T - 1], 12);
    }

    [Fact]
    public void PosteriorCoefficientsMatchHandValues()
    {
        // ac_t = 0.5, ac_prev = 0.8: alpha_t = 0.625, beta_t = 0.375.
        var (cx0, cxt, v) = NoiseSchedule.Posterior(0.5, 0.8);
        Assert.Equal(Math.Sqrt(0.8) * 0.375 / 0.5, cx0, 14);   // 0.67082...
        Assert.Equal(Math.Sqrt(0.625) * 0.2 / 0.5, cxt, 14);   // 0.31623...
        Assert.Equal(0.15, v, 14);
        // At the first step (ac_prev = 1) the posterior mean is x_0 itself with zero variance.
        var (c0, c1, v0) = NoiseSchedule.Posterior(0.9, 1.0);
        Assert.Equal(1.0, c0, 14);
        Assert.Equal(0.0, c1, 14);
        Assert.Equal(0.0, v0, 14);
    }

    [Fact]
    public void AddNoiseUsesOneTimestepPerRow()
    {
        var s = NoiseSchedule.FromBetas(new[] { 0.5, 0.5, 0.75 });   // ac = 0.5, 0.25, 0.0625
        var x0 = ones(3, 2, 2, 2);
        var noise = full(new long[] { 3, 2, 2, 2 }, 2.0f);
        var t = tensor(new long[] { 0, 1, 2 });
        var xt = s.AddNoise(x0, noise, t);
        var expected = new[] { Math.Sqrt(0.5) + 2 * Math.Sqrt(0.5), 0.5 + 2 * Math.Sqrt(0.75), 0.25 + 2 * Math.Sqrt(0.9375) };
        for (int b = 0; b < 3; b++)
            TensorAssert.AllClose(xt[b], full(new long[] { 2, 2, 2 }, expected[b]), 1e-6, 0, $"row {b}");
        var v = s.Velocity(x0, noise, t);
        TensorAssert.AllClose(v[2], full(new long[] { 2, 2, 2 }, 0.25 * 2 - Math.Sqrt(0.9375)), 1e-6, 0, "velocity row 2");
    }

    [Fact]
    public void AddNoiseRejectsTimestepsOutsideTheSchedule()
    {
        var s = NoiseSchedule.PixArtDefault();
        var e = Assert.Throws<ArgumentException>(() => s.AddNoise(zeros(2, 4, 2, 2), zeros(2, 4, 2, 2), tensor(new long[] { 3, 1000 })));
        Assert.Contains("[0, 999]", e.Message);
        Assert.Throws<ArgumentException>(() => s.AddNoise(zeros(2, 4, 2, 2), zeros(2, 4, 2, 2), tensor(new long[] { 3 })));
    }

    [Fact]
    public void RespacingKeepsTheCumulativeAlphasOfKeptSteps()
    {
        var s = NoiseSchedule.PixArtDefault();
        var kept = new[] { 0, 53, 105, 999 };
        var r = s.Respaced(kept);
        for (int k = 0; k < kept.Length; k++) Assert.Equal(s.AlphasCumprod[kept[k]], r.AlphasCumprod[k], 14);
        Assert.Throws<ArgumentException>(() => s.Respaced(new[] { 5, 5 }));
    }

    [Fact]
    public void ZeroTerminalSnrRescaleEndsAtZeroAndKeepsTheStart()
    {
        var s = NoiseSchedule.ScaledLinear(0.00085, 0.012, 1000).RescaledToZeroTerminalSnr();
        Assert.Equal(0.0, s.AlphasCumprod[999], 12);
        Assert.Equal(1 - 0.00085, s.AlphasCumprod[0], 10);
    }

    [Fact]
    public void FromConfigReadsTheScheduleKeysAndNamesBadValues()
    {
        var s = NoiseSchedule.FromConfig(SchedulerConfig.Parse("""{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"num_train_timesteps":500}"""));
        Assert.Equal(500, s.TrainTimesteps);
        Assert.Equal(0.012, s.Betas[499], 12);
        var trained = NoiseSchedule.FromConfig(SchedulerConfig.Parse("""{"trained_betas":[0.1,0.2]}"""));
        Assert.Equal(new[] { 0.9, 0.72 }, trained.AlphasCumprod.Select(a => Math.Round(a, 12)));
        var e = Assert.Throws<ArgumentException>(() => NoiseSchedule.FromConfig(SchedulerConfig.Parse("""{"beta_schedule":"sigmoid"}""", "my.json")));
        Assert.Contains("my.json", e.Message);
        Assert.Contains("beta_schedule \"sigmoid\"", e.Message);
        Assert.Contains("squaredcos_cap_v2", e.Message);
    }

    [Fact]
    public void IddpmLinearScalesTheRangeByStepCount()
    {
        var s = NoiseSchedule.IddpmLinear(500);
        Assert.Equal(2e-4, s.Betas[0], 15);
        Assert.Equal(0.04, s.Betas[499], 15);
    }
}
