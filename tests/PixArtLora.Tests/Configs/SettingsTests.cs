using System.CommandLine;
using PixArtLora.Cli;
using PixArtLora.Training;

namespace PixArtLora.Tests.Configs;

public class SettingsTests
{
    static TrainSettings Parse(params string[] args)
    {
        var cmd = new Command("train");
        var opts = new SettingsOptions<TrainSettings>(cmd);
        var parse = cmd.Parse(args);
        Assert.Empty(parse.Errors);
        return opts.Bind(parse);
    }

    [Fact]
    public void SnakeKebabAndSeedAliasesAllSetTheSameSetting()
    {
        Assert.Equal(8, Parse("--train_batch_size", "8").TrainBatchSize);
        Assert.Equal(8, Parse("--train-batch-size", "8").TrainBatchSize);
        Assert.Equal("pokemon", Parse("--dataset_name", "pokemon").Dataset);
        Assert.Equal("pokemon", Parse("--dataset-name", "pokemon").Dataset);
        Assert.Equal(3e-4, Parse("--learning_rate", "3e-4").LearningRate);
    }

    [Fact]
    public void BareFlagsMeanTrueAndDefaultsStayWhenAbsent()
    {
        var s = Parse("--gradient_checkpointing", "--random-flip", "false");
        Assert.True(s.GradientCheckpointing);
        Assert.False(s.RandomFlip);
        Assert.Equal(16, s.Rank);
        Assert.Equal("lora", s.Mode);
    }

    [Fact]
    public void YamlSetsValuesAndFlagsOverrideIt()
    {
        var dir = TestPaths.NewTempDir("cfg");
        var yaml = Path.Combine(dir, "train.yaml");
        File.WriteAllText(yaml, "rank: 4\nlearning_rate: 0.001\nvalidation_prompt:\n  - a cat\n  - a dog\nmode: full\n");
        var s = Parse("-c", yaml, "--rank", "8");
        Assert.Equal(8, s.Rank);
        Assert.Equal(0.001, s.LearningRate);
        Assert.Equal(new[] { "a cat", "a dog" }, s.ValidationPrompt);
        Assert.Equal("full", s.Mode);
    }

    [Fact]
    public void BadValuesAndUnknownKeysNameTheKeyAndSource()
    {
        var ex = Assert.Throws<FormatException>(() => Parse("--rank", "sixteen"));
        Assert.Contains("--rank", ex.Message);
        Assert.Contains("integer", ex.Message);

        var dir = TestPaths.NewTempDir("cfg");
        var yaml = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(yaml, "rnak: 4\n");
        var ex2 = Assert.Throws<FormatException>(() => Parse("-c", yaml));
        Assert.Contains("rnak", ex2.Message);
        Assert.Contains(yaml, ex2.Message);
    }
}
