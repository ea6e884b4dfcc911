using PixArtLora.Inference;

namespace PixArtLora.Tests.Inference;

/// <summary>Settings parsing that runs before any model is loaded: LoRA specs, output paths, prompts, devices.</summary>
public class InferenceSettingsTests
{
    [Fact]
    public void LoraSpecTakesATrailingScale()
    {
        Assert.Equal(new LoraSpec("a.safetensors", 0.8), LoraSpec.Parse("a.safetensors:0.8"));
        Assert.Equal(new LoraSpec("a.safetensors", 0.5), LoraSpec.Parse("a.safetensors", 0.5));
        Assert.Equal(new LoraSpec("C:/x/a.safetensors", -1), LoraSpec.Parse("C:/x/a.safetensors:-1"));
        Assert.Equal(new LoraSpec("dir:with/colon", 1), LoraSpec.Parse("dir:with/colon"));
        Assert.Throws<ArgumentException>(() => LoraSpec.Parse(" "));
    }

    [Fact]
    public void OutputPlanNamesFilesAndTheSheet()
    {
        var dir = TestPaths.NewTempDir("plan");
        var single = OutputPlan.For(Path.Combine(dir, "x.png"), 1);
        Assert.Equal(Path.Combine(dir, "x.png"), single.ImagePath(0, 5));
        Assert.Null(single.SheetPath);

        var several = OutputPlan.For(Path.Combine(dir, "x.PNG"), 3);
        Assert.Equal(Path.Combine(dir, "x-002.png"), several.ImagePath(2, 9));
        Assert.Equal(Path.Combine(dir, "x-grid.png"), several.SheetPath);

        var folder = OutputPlan.For(Path.Combine(dir, "imgs"), 2);
        Assert.Equal(Path.Combine(dir, "imgs", "0001-43.png"), folder.ImagePath(1, 43));
        Assert.Equal(Path.Combine(dir, "imgs", "grid.png"), folder.SheetPath);

        File.WriteAllText(Path.Combine(dir, "file"), "");
        Assert.Contains("existing file", Assert.Throws<ArgumentException>(() => OutputPlan.For(Path.Combine(dir, "file"), 1)).Message);
    }

    [Fact]
    public void PromptsComeFromFlagsAndFile()
    {
        var dir = TestPaths.NewTempDir("prompts");
        string file = Path.Combine(dir, "p.txt");
        File.WriteAllText(file, "one\r\n\r\ntwo\n");
        var prompts = InferenceRunner.ReadPrompts(new InferSettings { Prompt = new[] { "zero" }, PromptPath = file });
        Assert.Equal(new[] { "zero", "one", "two" }, prompts);

        Assert.Contains("no prompt", Assert.Throws<ArgumentException>(() => InferenceRunner.ReadPrompts(new InferSettings())).Message);
        File.WriteAllText(file, "  \n");
        Assert.Contains("holds no prompts", Assert.Throws<InvalidDataException>(() => InferenceRunner.ReadPrompts(new InferSettings { PromptPath = file })).Message);
        Assert.Throws<FileNotFoundException>(() => InferenceRunner.ReadPrompts(new InferSettings { PromptPath = Path.Combine(dir, "missing.txt") }));
    }

    [Fact]
    public void DevicesDtypesAndTiling()
    {
        Assert.Equal(TorchSharp.DeviceType.CPU, InferenceRunner.ParseDevice("CPU", "device").type);
        Assert.Contains("expected cpu, cuda", Assert.Throws<ArgumentException>(() => InferenceRunner.ParseDevice("tpu", "device")).Message);
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, InferenceRunner.ParseDType("bf16"));
        Assert.Throws<ArgumentException>(() => InferenceRunner.ParseDType("int8"));
        Assert.False(InferenceRunner.ParseTiling("off").Enabled);
        Assert.Throws<ArgumentException>(() => InferenceRunner.ParseTiling("sometimes"));
    }

    [Fact]
    public void ConfigFilesNameRegistryVariants()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "configs", "inference"), "*.yaml"))
        {
            var settings = new InferSettings();
            PixArtLora.Configs.SettingsBinder.ApplyYaml(settings, file);
            var variant = PixArtLora.Registry.ModelRegistry.Get(settings.Model);
            Assert.Equal(variant.CaptionTokens, settings.MaxSequenceLength);
            Assert.Equal(variant.ImageSize, settings.ImageWidth);
        }
    }
}
