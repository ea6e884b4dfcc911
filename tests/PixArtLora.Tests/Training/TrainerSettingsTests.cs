using PixArtLora.Configs;
using PixArtLora.Models.Transformer;
using PixArtLora.Training;
using PixArtLora.Training.Loop;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

/// <summary>Settings are checked before anything loads, with messages that name the option and the fix.</summary>
public class TrainerSettingsTests
{
    static TrainSettings Valid(Action<TrainSettings>? edit = null)
    {
        var s = new TrainSettings { Model = "tiny", Dataset = "shapes", OutputDir = Path.Combine(Path.GetTempPath(), "pixartlora-plan-test") };
        edit?.Invoke(s);
        return s;
    }

    [Fact]
    public void Fp16_is_refused_on_the_cpu_with_the_reason_and_the_alternatives()
    {
        var e = Assert.Throws<ArgumentException>(() => TrainingPlan.From(Valid(s => s.MixedPrecision = "fp16")));
        Assert.Contains("--mixed_precision fp16", e.Message);
        Assert.Contains("CPU", e.Message);
        Assert.Contains("bf16", e.Message);
    }

    [Fact]
    public void Bf16_keeps_frozen_weights_in_bf16_and_trainable_ones_in_fp32()
    {
        var plan = TrainingPlan.From(Valid(s => s.MixedPrecision = "bf16"));
        Assert.Equal(ScalarType.BFloat16, plan.FrozenDtype);
        Assert.Equal(ScalarType.Float32, plan.TrainableDtype);
        Assert.Equal(ScalarType.Float32, TrainingPlan.From(Valid()).FrozenDtype);
    }

    [Theory]
    [InlineData("mode", "dreambooth", "--mode")]
    [InlineData("device", "tpu", "--device")]
    [InlineData("optimizer", "sgd", "--optimizer")]
    [InlineData("lr_scheduler", "exponential", "--lr_scheduler")]
    [InlineData("loss", "l1", "loss")]
    [InlineData("train_batch_size", "0", "--train_batch_size")]
    [InlineData("resolution", "100", "--resolution")]
    [InlineData("proportion_empty_prompts", "1.5", "--proportion_empty_prompts")]
    [InlineData("checkpoints_total_limit", "0", "--checkpoints_total_limit")]
    [InlineData("report_to", "wandb", "--report_to")]
    [InlineData("use_ema", "true", "--use_ema")]
    [InlineData("attention_probabilities_mb", "-1", "--attention_probabilities_mb")]
    public void Bad_values_name_their_option(string key, string value, string named)
    {
        var s = Valid();
        SettingsBinder.Set(s, SettingsBinder.Find(typeof(TrainSettings), key)!, value, key);
        var e = Assert.ThrowsAny<ArgumentException>(() => TrainingPlan.From(s));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void The_attention_probability_budget_reaches_the_attention_kernel()
    {
        long before = ChunkedAttention.KeptProbabilityBudgetBytes;
        try
        {
            var s = Valid();
            SettingsBinder.Set(s, SettingsBinder.Find(typeof(TrainSettings), "attention_probabilities_mb")!, "0", "attention_probabilities_mb");
            using var model = PixArtTransformer2DModel.FromPretrained(
                TestPaths.Fixture("parity", "transformer-sigma", "transformer"));
            using var prepared = TrainableTransformer.Prepare(model, TrainingPlan.From(s));
            Assert.Equal(0, ChunkedAttention.KeptProbabilityBudgetBytes);
            Assert.Equal(64, Valid().AttentionProbabilitiesMb);
        }
        finally { ChunkedAttention.KeptProbabilityBudgetBytes = before; }
    }

    [Fact]
    public void Training_needs_data()
    {
        var e = Assert.Throws<ArgumentException>(() => TrainingPlan.From(Valid(s => s.Dataset = null)));
        Assert.Contains("--dataset", e.Message);
    }

    [Fact]
    public void Run_folder_defaults_to_output_run_name_and_cache_beside_it()
    {
        var plan = TrainingPlan.From(new TrainSettings { Model = "tiny", Dataset = "shapes" }, new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero));
        Assert.Equal("lora-tiny-20250304-050607", plan.RunName);
        Assert.Equal(Path.GetFullPath(Path.Combine("output", "lora-tiny-20250304-050607")), plan.OutputDir);
        Assert.Equal(Path.GetFullPath(Path.Combine("output", "cache")), plan.CacheDir);
    }

    [Fact]
    public void Resuming_latest_needs_to_know_the_run_folder()
    {
        var e = Assert.Throws<ArgumentException>(() => TrainingPlan.From(new TrainSettings { Dataset = "shapes", ResumeFromCheckpoint = "latest" }));
        Assert.Contains("--output_dir", e.Message);
    }

    [Fact]
    public void A_checkpoint_path_alone_resumes_in_its_run_folder()
    {
        string run = TestPaths.NewTempDir("resume-path");
        string checkpoint = Directory.CreateDirectory(Path.Combine(run, "checkpoint-4")).FullName;
        var plan = TrainingPlan.From(new TrainSettings { Dataset = "shapes", ResumeFromCheckpoint = checkpoint });
        Assert.Equal(Path.GetFullPath(run), plan.OutputDir);
        Assert.Equal(checkpoint, plan.ResumeFrom);
    }

    [Fact]
    public void Every_recipe_parses_and_passes_validation()
    {
        var recipes = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "recipes"), "*.yaml");
        Assert.Contains(recipes, r => Path.GetFileName(r) == "tiny-offline.yaml");
        // The configs/train files mirror the reference trainer's configs: the data comes on the command line.
        var configs = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "configs", "train"), "*.yaml");
        Assert.Equal(4, configs.Length);
        foreach (var recipe in recipes.Concat(configs))
        {
            var s = new TrainSettings();
            SettingsBinder.ApplyYaml(s, recipe);
            if (s.Dataset is null && s.JsonPath is null) s.JsonPath = "labels.json";
            // Recipes for GPUs may ask for CUDA-only settings; the rest of their values must be valid.
            if (s.Device != "cpu") s.Device = "cpu";
            if (s.MixedPrecision == "fp16") s.MixedPrecision = "bf16";
            var plan = TrainingPlan.From(s);
            Assert.NotNull(plan.RunName);
        }
    }

    [Theory]
    [InlineData("attn2", "transformer_blocks.1.attn2.to_q.weight", true)]
    [InlineData("transformer_blocks.0", "transformer_blocks.0.ff.net.2.bias", true)]
    [InlineData("transformer_blocks.0", "transformer_blocks.10.ff.net.2.bias", false)]
    [InlineData("pos_embed", "pos_embed.proj.weight", true)]
    [InlineData("proj", "pos_embed.proj.weight", true)]
    [InlineData("proj", "proj_out.weight", false)]
    [InlineData("re:.*norm.*", "transformer_blocks.0.norm2.weight", true)]
    public void Freeze_patterns_match_modules_like_lora_targets(string pattern, string parameter, bool expected) =>
        Assert.Equal(expected, TrainableTransformer.FreezeMatches(pattern, parameter));
}
