using PixArtLora.Diffusion;

namespace PixArtLora.Tests.Diffusion;

public class SchedulerConfigTests
{
    [Fact]
    public void ReadsPixArtSigmasSchedulerConfigIncludingPythonInfinity()
    {
        // The real PixArt-Sigma pipeline folder layout: <model>/scheduler/scheduler_config.json.
        var config = SchedulerConfig.Load(TestPaths.Fixture("parity", "pipeline-sigma"));
        Assert.Equal("DPMSolverMultistepScheduler", config.ClassName);
        Assert.Equal(double.NegativeInfinity, config.LambdaMinClipped);
        Assert.Equal("linspace", config.TimestepSpacing);
        Assert.Equal(2, config.SolverOrder);
        Assert.Null(config.VarianceType);
        Assert.Null(config.TrainedBetas);
        Assert.EndsWith(Path.Combine("scheduler", "scheduler_config.json"), config.Source);
    }

    [Fact]
    public void AcceptsTheFileOrItsFolder()
    {
        var dir = TestPaths.NewTempDir("schedcfg");
        var file = Path.Combine(dir, "scheduler_config.json");
        File.WriteAllText(file, """{"_class_name":"DDIMScheduler","clip_sample":false,"sigma_max":Infinity,"x":NaN,"s":"-Infinity in a string"}""");
        Assert.False(SchedulerConfig.Load(dir).ClipSample);
        Assert.Equal(double.PositiveInfinity, SchedulerConfig.Load(file).SigmaMax);
        Assert.Throws<FileNotFoundException>(() => SchedulerConfig.Load(Path.Combine(dir, "missing.json")));
    }

    [Fact]
    public void ReportsTheKeyOfAWronglyTypedValue()
    {
        var e = Assert.Throws<FormatException>(() => SchedulerConfig.Parse("""{"num_train_timesteps": "many"}""", "cfg.json"));
        Assert.Contains("cfg.json", e.Message);
        Assert.Contains("num_train_timesteps", e.Message);
    }

    [Fact]
    public void KeysMarkedAsDefaultsAreTreatedAsMissing()
    {
        var c = SchedulerConfig.Parse("""{"timestep_spacing":"leading","clip_sample":false,"_use_default_values":["timestep_spacing"]}""");
        Assert.Null(c.TimestepSpacing);
        Assert.False(c.ClipSample);
    }

    [Fact]
    public void ChooseNamesTheValidValues()
    {
        var c = SchedulerConfig.Parse("{}", "here.json");
        Assert.Equal("linspace", c.Choose("timestep_spacing", null, "linspace", TimestepGrid.Spacings));
        var e = Assert.Throws<ArgumentException>(() => c.Choose("timestep_spacing", "weird", "linspace", TimestepGrid.Spacings));
        Assert.Equal("here.json: timestep_spacing \"weird\" is not supported; expected one of linspace, leading, trailing", e.Message);
    }
}
