using PixArtLora.Diffusion;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Diffusion;

/// <summary>Properties every sampler must have, independent of the reference fixtures.</summary>
public class SamplerBehaviourTests
{
    static readonly string[] AllNames = { "dpm-solver", "ddim", "ddpm", "euler", "sa-solver", "iddpm" };

    /// <summary>
    /// The exact denoiser of a point-mass data distribution at <paramref name="x0"/>: eps = (x_t - α x0) / σ at the
    /// noise level of the timestep the model is told (linearly interpolated sigma for Euler's fractional timesteps).
    /// </summary>
    static DenoiserFn PointMassOracle(Tensor x0, NoiseSchedule schedule, bool learnedVariance)
    {
        var sigmas = schedule.AlphasCumprod.Select(a => Math.Sqrt((1 - a) / a)).ToArray();
        return (x, t) =>
        {
            double tv = t[0].item<float>();
            int lo = (int)Math.Floor(tv);
            double sigma = lo >= sigmas.Length - 1 ? sigmas[^1] : sigmas[lo] + (tv - lo) * (sigmas[lo + 1] - sigmas[lo]);
            double alpha = 1 / Math.Sqrt(sigma * sigma + 1), sigmaVp = sigma * alpha;
            var eps = (x - alpha * x0) / sigmaVp;
            return learnedVariance ? cat(new[] { eps, zeros_like(eps) }, 1) : eps;
        };
    }

    [Theory]
    [InlineData("dpm-solver", 8)]
    [InlineData("dpm-solver", 20)]
    [InlineData("ddim", 8)]
    [InlineData("ddpm", 10)]
    [InlineData("euler", 8)]
    [InlineData("iddpm", 13)]
    public void ExactDenoiserOfAPointMassLandsOnThePoint(string name, int steps)
    {
        var config = SchedulerConfig.Load(TestPaths.Fixture("parity", "pipeline-sigma"));
        using var sampler = SamplerFactory.Create(name, steps, config);
        foreach (var shape in new[] { new long[] { 2, 4, 6, 5 }, new long[] { 3, 4, 8 } })
        {
            var x0 = rand(shape, generator: new Generator(7)) * 1.6 - 0.8;   // inside DDIM/DDPM's [-1, 1] clip
            var result = SamplingLoop.Run(sampler, randn(shape, generator: new Generator(1)),
                PointMassOracle(x0, sampler.Schedule, sampler.NeedsLearnedVariance), new Generator(2));
            TensorAssert.AllClose(result, x0, 2e-4, 1e-4, $"{name} {steps} steps, shape [{string.Join(", ", shape)}]");
        }
    }

    [Fact]
    public void SaSolverWithAnExactDenoiserEndsWithinTheFinalNoiseLevel()
    {
        // SA-Solver stops at sigma_min (about 0.01), not at 0, so the point is reached up to that noise level.
        using var sampler = SamplerFactory.Create("sa-solver", 10);
        var x0 = rand(new long[] { 2, 4, 6, 6 }, generator: new Generator(7)) * 1.6 - 0.8;
        var result = SamplingLoop.Run(sampler, randn(new long[] { 2, 4, 6, 6 }, generator: new Generator(1)),
            PointMassOracle(x0, sampler.Schedule, false), new Generator(2));
        TensorAssert.AllClose(result, x0, 0.05, 0, "sa-solver");
    }

    static Tensor Toy(Tensor x, Tensor t)
    {
        var eps = x.tanh() * (t.reshape(-1, 1, 1, 1) / 1000) + 0.05 * x.cos();
        return cat(new[] { eps, 0.5 * x.sin() }, 1);   // PixArt-style 2C output; samplers without learned variance ignore it
    }

    [Theory]
    [InlineData("ddpm")]
    [InlineData("sa-solver")]
    [InlineData("iddpm")]
    public void TheSameSeedGivesTheSameSampleAndAnotherSeedAnother(string name)
    {
        using var sampler = SamplerFactory.Create(name, 6);
        var noise = randn(new long[] { 2, 4, 4, 4 }, generator: new Generator(5));
        var a = SamplingLoop.Run(sampler, noise, Toy, new Generator(42));
        var b = SamplingLoop.Run(sampler, noise, Toy, new Generator(42));
        var c = SamplingLoop.Run(sampler, noise, Toy, new Generator(43));
        TensorAssert.Equal(a, b, $"{name} same seed");
        Assert.True((a - c).abs().max().item<float>() > 1e-3, $"{name}: a different seed should change the sample");
    }

    [Fact]
    public void DdimEtaAboveZeroDrawsOncePerStepAndEtaZeroNever()
    {
        var noise = NoiseSource.FromGenerator(new Generator(3));
        using var stochastic = SamplerFactory.Create("ddim", 5, options: new SamplerOptions { Eta = 1.0 });
        SamplingLoop.Run(stochastic, randn(1, 4, 4, 4), Toy, noise);
        Assert.Equal(5, noise.Drawn);
        using var deterministic = SamplerFactory.Create("ddim", 5);
        SamplingLoop.Run(deterministic, randn(1, 4, 4, 4), Toy);   // no noise source needed
    }

    [Theory]
    [InlineData("ddpm")]
    [InlineData("sa-solver")]
    [InlineData("iddpm")]
    public void AStochasticSamplerWithoutNoiseSaysWhatToPass(string name)
    {
        using var sampler = SamplerFactory.Create(name, 4);
        var e = Assert.Throws<InvalidOperationException>(() => SamplingLoop.Run(sampler, randn(1, 4, 4, 4), Toy));
        Assert.Contains("Generator", e.Message);
    }

    [Fact]
    public void StepsMustRunInOrderAndStepZeroRestarts()
    {
        using var sampler = SamplerFactory.Create("dpm-solver", 5);
        var x = randn(1, 4, 4, 4);
        var e = Assert.Throws<InvalidOperationException>(() => sampler.Step(Toy(x, tensor(new[] { 999f })), 2, x));
        Assert.Contains("in order", e.Message);
        // Two full trajectories from the same start give the same result (history is reset at step 0).
        var first = SamplingLoop.Run(sampler, x, Toy);
        var second = SamplingLoop.Run(sampler, x, Toy);
        TensorAssert.Equal(first, second, "second trajectory");
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Step(x, 5, x));
    }

    [Fact]
    public void ModelOutputsOfTheWrongShapeAreRejected()
    {
        using var dpm = SamplerFactory.Create("dpm-solver", 4);
        var x = randn(1, 4, 4, 4);
        Assert.Contains("does not fit", Assert.Throws<ArgumentException>(() => dpm.Step(randn(1, 3, 4, 4), 0, x)).Message);
        using var iddpm = SamplerFactory.Create("iddpm", 4);
        Assert.Contains("expected 8", Assert.Throws<ArgumentException>(() => iddpm.Step(randn(1, 4, 4, 4), 0, x, new Generator(1))).Message);
    }

    [Fact]
    public void HalfPrecisionSamplesStayHalfAndAgreeWithFloat32()
    {
        using var sampler = SamplerFactory.Create("dpm-solver", 6);
        var x = randn(1, 4, 4, 4, generator: new Generator(9));
        var full32 = SamplingLoop.Run(sampler, x, Toy);
        var bf16 = SamplingLoop.Run(sampler, x.to(bfloat16), (i, t) => Toy(i.to(float32), t).to(bfloat16));
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        TensorAssert.AllClose(bf16.to(float32), full32, 0.1, 0.05, "bf16 vs fp32");
    }

    [Fact]
    public void EulerScalesTheInitialNoiseAndTheModelInput()
    {
        using var euler = (EulerDiscreteSampler)SamplerFactory.Create("euler", 8);
        double maxSigma = Math.Sqrt((1 - euler.Schedule.AlphasCumprod[999]) / euler.Schedule.AlphasCumprod[999]);
        Assert.Equal(maxSigma, euler.InitNoiseSigma, 9);
        var x = ones(1, 4, 2, 2);
        TensorAssert.AllClose(euler.ScaleModelInput(x, 0), x / Math.Sqrt(maxSigma * maxSigma + 1), 1e-7, 1e-6, "scaled input");
        foreach (var name in AllNames.Where(n => n != "euler"))
        {
            using var s = SamplerFactory.Create(name, 8);
            Assert.Equal(1.0, s.InitNoiseSigma);
        }
    }

    [Fact]
    public void SaSolverKernelsAreTheIntegralsTheyClaim()
    {
        // Simpson's rule over [a, b] against the closed forms of ∫ exp((1+τ²)λ) λ^k dλ and ∫ exp(-λ) λ^k dλ.
        static double Simpson(Func<double, double> f, double a, double b, int n = 2000)
        {
            double h = (b - a) / n, sum = f(a) + f(b);
            for (int i = 1; i < n; i++) sum += f(a + i * h) * (i % 2 == 1 ? 4 : 2);
            return sum * h / 3;
        }
        const double a = -1.3, b = 0.4;
        foreach (double tau in new[] { 0.0, 1.0 })
            for (int k = 0; k <= 3; k++)
            {
                double expected = Simpson(l => Math.Exp((1 + tau * tau) * l) * Math.Pow(l, k), a, b);
                Assert.Equal(expected, SaSolverSampler.KernelMomentPositive(k, a, b, tau), 8);
            }
        for (int k = 0; k <= 3; k++)
            Assert.Equal(Simpson(l => Math.Exp(-l) * Math.Pow(l, k), a, b), SaSolverSampler.KernelMomentNegative(k, a, b), 8);
    }

    [Fact]
    public void LagrangeBasisIsOneAtItsNodeAndZeroAtTheOthers()
    {
        var nodes = new[] { -2.0, 0.5, 1.5, 3.0 };
        for (int i = 0; i < nodes.Length; i++)
        {
            var coefficients = SaSolverSampler.LagrangeBasis(nodes, i);
            for (int j = 0; j < nodes.Length; j++)
            {
                double value = coefficients.Aggregate(0.0, (acc, c) => acc * nodes[j] + c);   // Horner, highest power first
                Assert.Equal(i == j ? 1.0 : 0.0, value, 10);
            }
        }
    }
}
