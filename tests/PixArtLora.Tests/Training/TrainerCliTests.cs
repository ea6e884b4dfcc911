using System.Diagnostics;
using PixArtLora.Data.Sources;
using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Training.Checkpoints;
using SixLabors.ImageSharp;

namespace PixArtLora.Tests.Training;

/// <summary>The built <c>lora</c> executable: recipes, caches, signals, errors — what a user at a terminal sees.</summary>
[Collection(TrainerCollection.Name)]
public class TrainerCliTests
{
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    /// <summary>Small enough for a test: 8 images at 128 px, a separate cache so the first run really encodes.</summary>
    static string[] Small(string output, string cache, params string[] more) => new[]
    {
        "--max_train_samples", "8", "--resolution", "128", "--output_dir", output, "--cache_dir", cache,
    }.Concat(more).ToArray();

    [Fact]
    public void The_offline_recipe_trains_writes_a_lora_and_validation_images_and_says_where()
    {
        string output = TestPaths.NewTempDir("cli-recipe");
        var (code, stdout, stderr) = TrainerWorkspace.RunLora(Limit, new[] { "train", "-c", "recipes/tiny-offline.yaml" }
            .Concat(Small(output, TrainerWorkspace.CacheDir, "--max_train_steps", "4", "--validation_epochs", "1", "--validation_steps", "4",
                "--checkpointing_steps", "2")).ToArray());
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        // 8 images in batches of 4: the fourth and last step ends the second epoch (not "epoch 3/2").
        Assert.Contains("step 4/4 (100%) | epoch 2/2 |", stdout);
        string lora = Path.Combine(output, "pytorch_lora_weights.safetensors");
        Assert.Contains(lora, stdout);
        Assert.True(File.Exists(lora));
        Assert.Equal(new long[] { 2, 4 }, CheckpointDirectory.List(output).Select(c => c.Step));
        var pngs = Directory.GetFiles(Path.Combine(output, "validation"), "*.png", SearchOption.AllDirectories);
        Assert.NotEmpty(pngs);
        using var image = Image.Load(pngs[0]);
        Assert.Equal((128, 128), (image.Width, image.Height));
        // The same images are in TensorBoard, as PNGs of the same size.
        var events = TensorBoardEventReader.Read(Assert.Single(Directory.GetFiles(Path.Combine(output, "logs"), "events.out.tfevents.*")));
        var logged = events.SelectMany(e => e.Values).Where(v => v.Image is not null).Select(v => v.Image!).ToList();
        Assert.Equal(pngs.Length, logged.Count);
        Assert.All(logged, i => Assert.Equal((128, 128, 3), (i.Width, i.Height, i.Colorspace)));
        using var decoded = Image.Load(logged[0].Encoded);
        Assert.Equal(128, decoded.Width);
    }

    [Fact]
    public void Cache_then_train_loads_neither_encoder_again()
    {
        string cache = TestPaths.NewTempDir("cli-cache");
        string output = TestPaths.NewTempDir("cli-cached-run");
        var common = new[] { "--pretrained_model_name_or_path", "tiny", "--dataset", "shapes", "--center_crop" };
        var (code, stdout, stderr) = TrainerWorkspace.RunLora(Limit, new[] { "cache" }.Concat(common).Concat(Small(output, cache, "--max_train_steps", "2")).ToArray());
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"feature cache: {cache}", stdout);
        Assert.Contains("encoded 9 of 9 captions", stdout); // 8 captions + the empty prompt
        (code, stdout, stderr) = TrainerWorkspace.RunLora(Limit, new[] { "train" }.Concat(common).Concat(Small(output, cache, "--max_train_steps", "2")).ToArray());
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("(T5 not loaded)", stdout);
        Assert.Contains("(nothing encoded)", stdout);
    }

    [Fact]
    public void Sigint_finishes_the_step_writes_a_loadable_checkpoint_and_exits_130()
    {
        string output = TestPaths.NewTempDir("cli-sigint");
        using var process = TrainerWorkspace.StartLora(new[] { "train", "--pretrained_model_name_or_path", "tiny", "--dataset", "shapes" }
            .Concat(Small(output, TrainerWorkspace.CacheDir, "--max_train_steps", "100000", "--checkpointing_steps", "100000")).ToArray());
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        string metrics = Path.Combine(output, "metrics.jsonl");
        var wait = Stopwatch.StartNew();
        while (!(File.Exists(metrics) && File.ReadAllLines(metrics).Length >= 2))
        {
            if (process.HasExited) Assert.Fail($"lora exited early with {process.ExitCode}\n{stdout.Result}\n{stderr.Result}");
            if (wait.Elapsed > Limit) { process.Kill(true); Assert.Fail("training did not start logging within 2 minutes"); }
            Thread.Sleep(100);
        }
        using (var kill = Process.Start("kill", new[] { "-INT", process.Id.ToString() })) kill.WaitForExit();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "lora did not exit within a minute of SIGINT");
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}\n{stdout.Result}\n{stderr.Result}");

        string checkpoint = CheckpointDirectory.FindLatest(output) ?? throw new Xunit.Sdk.XunitException($"no checkpoint in {output}\n{stdout.Result}");
        Assert.Contains(checkpoint, stdout.Result);
        var manifest = TrainingCheckpoint.ReadManifest(checkpoint);
        Assert.True(manifest.Position.GlobalStep >= 2);
        using var model = PixArtTransformer2DModel.FromPretrained(Path.Combine(TinyModels.EnsurePipeline(TrainerWorkspace.ModelsRoot), "transformer"));
        using var net = LoraNetwork.Attach(model);
        using var weights = LoraFile.Read(Path.Combine(checkpoint, "pytorch_lora_weights.safetensors"), net.Catalog());
        Assert.NotEmpty(weights.Modules);

        // ... and the run continues from it.
        long resumeTo = manifest.Position.GlobalStep + 1;
        var (code, resumed, err) = TrainerWorkspace.RunLora(Limit, new[] { "train", "--pretrained_model_name_or_path", "tiny", "--dataset", "shapes" }
            .Concat(Small(output, TrainerWorkspace.CacheDir, "--max_train_steps", resumeTo.ToString(), "--resume_from_checkpoint", "latest")).ToArray());
        Assert.True(code == 0, $"exit {code}\n{resumed}\n{err}");
        Assert.Contains($"resumed from {checkpoint} at step {manifest.Position.GlobalStep}", resumed);
    }

    [Fact]
    public void Fp16_on_the_cpu_fails_before_loading_anything()
    {
        var (code, _, stderr) = TrainerWorkspace.RunLora(Limit, "train", "--pretrained_model_name_or_path", "tiny", "--dataset", "shapes",
            "--mixed-precision", "fp16", "--output-dir", TestPaths.NewTempDir("cli-fp16"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: --mixed_precision fp16 is not supported on the CPU", stderr.Trim());
    }

    [Fact]
    public void Make_sample_dataset_writes_a_parquet_file_the_dataset_reader_opens()
    {
        string path = Path.Combine(TestPaths.NewTempDir("cli-shapes"), "shapes.parquet");
        var (code, stdout, stderr) = TrainerWorkspace.RunLora(Limit, "make-sample-dataset", "--output", path, "--count", "6", "--size", "64");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(path, stdout.Trim());
        var dataset = DatasetResolver.Open(new DatasetSpec { Dataset = path });
        Assert.Equal(6, dataset.Count);
        Assert.Equal(PixArtLora.Data.Samples.ShapesDataset.Describe(6).Select(s => s.Caption), dataset.Items.Select(i => i.Caption));
        Assert.All(dataset.Items, i => Assert.Equal((64, 64), (i.Width, i.Height)));
    }
}
