using PixArtLora.Diffusion;

namespace PixArtLora.Tests.Diffusion;

public class SamplerFactoryTests
{
    [Theory]
    [InlineData("dpm", typeof(DpmSolverMultistepSampler))]
    [InlineData("dpm-solver", typeof(DpmSolverMultistepSampler))]
    [InlineData("DDIM", typeof(DdimSampler))]
    [InlineData("ddpm", typeof(DdpmSampler))]
    [InlineData("euler", typeof(EulerDiscreteSampler))]
    [InlineData("sa-solver", typeof(SaSolverSampler))]
    [InlineData("iddpm", typeof(IddpmSampler))]
    public void CreatesEachSamplerByName(string name, Type type)
    {
        using var sampler = SamplerFactory.Create(name, 20);
        Assert.IsType(type, sampler);
        Assert.Equal(20, sampler.StepCount);
        Assert.Equal(20, sampler.Timesteps.Count);
        Assert.True(sampler.Timesteps.Zip(sampler.Timesteps.Skip(1)).All(p => p.First > p.Second), "timesteps descend");
    }

    [Fact]
    public void AnUnknownNameListsTheValidOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => SamplerFactory.Create("heun", 20));
        Assert.Contains("unknown sampler \"heun\"", e.Message);
        Assert.Contains("dpm, dpm-solver, ddim, ddpm, euler, sa-solver, iddpm", e.Message);
    }

    [Theory]
    [InlineData("dpm", 0)]
    [InlineData("ddim", -3)]
    [InlineData("euler", 1001)]
    [InlineData("iddpm", 0)]
    [InlineData("iddpm", 1001)]
    [InlineData("sa-solver", 5000)]
    public void StepCountsOutsideOneToTrainingTimestepsAreRejected(string name, int steps)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SamplerFactory.Create(name, steps));
        Assert.Contains($"{steps} steps requested", e.Message);
        Assert.Contains("from 1 to 1000", e.Message);
    }

    [Fact]
    public void TheStepLimitFollowsTheConfigsTrainingTimesteps()
    {
        var config = SchedulerConfig.Parse("""{"num_train_timesteps": 100}""");
        Assert.Contains("from 1 to 100", Assert.Throws<ArgumentOutOfRangeException>(() => SamplerFactory.Create("ddim", 101, config)).Message);
        using var s = SamplerFactory.Create("ddim", 100, config);
        Assert.Equal(100, s.StepCount);
    }

    [Fact]
    public void FromConfigDispatchesOnTheClassName()
    {
        var config = SchedulerConfig.Load(TestPaths.Fixture("parity", "scheduler-euler", "scheduler"));
        using var sampler = SamplerFactory.FromConfig(config, 8);
        Assert.IsType<EulerDiscreteSampler>(sampler);
        var e = Assert.Throws<ArgumentException>(() => SamplerFactory.FromConfig(SchedulerConfig.Parse("""{"_class_name":"LCMScheduler"}""", "x.json"), 8));
        Assert.Contains("x.json: _class_name \"LCMScheduler\"", e.Message);
        Assert.Contains("DPMSolverMultistepScheduler", e.Message);
    }

    [Fact]
    public void SaSolverIgnoresDpmSolversAlgorithmNameInPixArtsConfig()
    {
        // PixArt ships a DPM-Solver config (algorithm_type dpmsolver++); diffusers' SASolverScheduler would refuse it.
        var config = SchedulerConfig.Load(TestPaths.Fixture("parity", "pipeline-sigma"));
        using var sampler = SamplerFactory.Create("sa-solver", 25, config);
        Assert.Equal(25, sampler.StepCount);
    }

    [Fact]
    public void IddpmTakesARespacingString()
    {
        using var sampler = (IddpmSampler)SamplerFactory.Create("iddpm", 1, options: new SamplerOptions { IddpmRespacing = "10,5" });
        Assert.Equal(15, sampler.StepCount);
        Assert.Equal(999.0, sampler.Timesteps[0]);
        Assert.Equal(0.0, sampler.Timesteps[^1]);
    }

    [Fact]
    public void UnsupportedConfigValuesNameTheKey()
    {
        var bad = SchedulerConfig.Parse("""{"algorithm_type":"dpmsolver","final_sigmas_type":"zero"}""", "s.json");
        Assert.Contains("final_sigmas_type", Assert.Throws<ArgumentException>(() => SamplerFactory.Create("dpm", 10, bad)).Message);
        var order = SchedulerConfig.Parse("""{"solver_order":4}""", "s.json");
        Assert.Contains("s.json: solver_order \"4\"", Assert.Throws<ArgumentException>(() => SamplerFactory.Create("dpm", 10, order)).Message);
    }
}
