using System.Text.Json.Nodes;
using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using PixArtLora.Training.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

public class TrainingCheckpointTests
{
    [Theory]
    [InlineData("adamw")]
    [InlineData("came")]
    public void TwoNStepsEqualNStepsThenResumeThenNSteps(string optimizer)
    {
        // N = 6 crosses an epoch boundary (4 batches per epoch) and stops mid-epoch.
        const int n = 6;
        var dir = TestPaths.NewTempDir("ckpt");
        using var straight = new TinyTrainingRun(optimizer, seed: 11, initSeed: 1, totalSteps: 2 * n);
        straight.Train(2 * n);

        string saved;
        using (var first = new TinyTrainingRun(optimizer, seed: 11, initSeed: 1, totalSteps: 2 * n))
        {
            first.Train(n);
            saved = TrainingCheckpoint.Save(dir, first.Position, first.Parts, totalLimit: 3,
                extra: new JsonObject { ["mode"] = "lora", ["rank"] = 4 });
        }
        // A fresh process would build everything anew; a different init and seed prove all state comes from disk.
        using var resumed = new TinyTrainingRun(optimizer, seed: 999, initSeed: 2, totalSteps: 2 * n);
        var manifest = TrainingCheckpoint.Load(CheckpointDirectory.Resolve(dir, "latest")!, resumed.Parts);
        Assert.Equal(saved, manifest.Path);
        Assert.Equal(new TrainingPosition(n, 1, 2), manifest.Position);
        Assert.Equal("lora", manifest.Extra["mode"]!.GetValue<string>());
        Assert.Equal(11, manifest.Seed);
        resumed.Position = manifest.Position;
        resumed.Train(n);

        Assert.Equal(straight.Position, resumed.Position);
        Assert.Equal(straight.Losses.Skip(n), resumed.Losses);
        for (int i = 0; i < straight.Weights.Count; i++)
            TensorAssert.Equal(resumed.Weights[i].Parameter, straight.Weights[i].Parameter, $"{optimizer}: {straight.Weights[i].Name}");
        foreach (var (name, shadow) in straight.Ema.Shadow)
            TensorAssert.Equal(resumed.Ema.Shadow[name], shadow, $"{optimizer}: EMA {name}");
        var a = straight.Optimizer.ExportState();
        var b = resumed.Optimizer.ExportState();
        foreach (var (key, t) in a.Tensors) TensorAssert.Equal(b.Tensors[key], t, $"{optimizer}: optimizer {key}");
        Assert.True(straight.Losses[^1] < straight.Losses[0], "the tiny run learns");
    }

    [Fact]
    public void TotalLimitKeepsOnlyTheNewest()
    {
        var dir = TestPaths.NewTempDir("ckpt");
        using var run = new TinyTrainingRun("adamw", 1, 1, 10);
        for (int i = 0; i < 5; i++)
        {
            run.Train(1);
            TrainingCheckpoint.Save(dir, run.Position, run.Parts, totalLimit: 2);
        }
        Assert.Equal(new[] { "checkpoint-4", "checkpoint-5" },
            Directory.GetDirectories(dir).Select(Path.GetFileName).Order().ToArray());
        Assert.Equal(new long[] { 4, 5 }, CheckpointDirectory.List(dir).Select(c => c.Step));
    }

    [Fact]
    public void HalfWrittenFoldersAreIgnoredByLatest()
    {
        var dir = TestPaths.NewTempDir("ckpt");
        using var run = new TinyTrainingRun("came", 1, 1, 10);
        run.Train(3);
        string good = TrainingCheckpoint.Save(dir, run.Position, run.Parts);

        // What a kill during Save leaves: AtomicFile's hidden temp folder (of a process that no longer
        // exists), with a manifest already inside, at a higher step.
        string temp = Path.Combine(dir, $".checkpoint-9.999999999.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        File.Copy(Path.Combine(good, TrainingCheckpoint.ManifestFileName), Path.Combine(temp, TrainingCheckpoint.ManifestFileName));
        // And a folder with the right name but no manifest (e.g. copied by hand, incompletely).
        Directory.CreateDirectory(Path.Combine(dir, "checkpoint-12"));

        Assert.Equal(good, CheckpointDirectory.FindLatest(dir));
        Assert.Equal(good, CheckpointDirectory.Resolve(dir, "latest"));

        run.Train(1);
        TrainingCheckpoint.Save(dir, run.Position, run.Parts);
        Assert.False(Directory.Exists(temp), "the next save clears a dead process's temp folder");
    }

    [Fact]
    public void ResolveAcceptsNamesAndPathsAndExplainsMisses()
    {
        var dir = TestPaths.NewTempDir("ckpt");
        Assert.Null(CheckpointDirectory.Resolve(dir, "latest")); // nothing yet: start fresh, as diffusers does
        using var run = new TinyTrainingRun("adamw", 1, 1, 10);
        run.Train(2);
        string path = TrainingCheckpoint.Save(dir, run.Position, run.Parts);
        Assert.Equal(path, CheckpointDirectory.Resolve(dir, "checkpoint-2"));
        Assert.Equal(path, CheckpointDirectory.Resolve("/nonexistent", path));
        var e = Assert.Throws<DirectoryNotFoundException>(() => CheckpointDirectory.Resolve(dir, "checkpoint-7"));
        Assert.Contains("checkpoint-7", e.Message);
        Assert.Contains("available: latest, checkpoint-2", e.Message);
    }

    [Fact]
    public void MismatchedRunsAreRefusedWithReasons()
    {
        var dir = TestPaths.NewTempDir("ckpt");
        string path;
        using (var run = new TinyTrainingRun("came", 1, 1, 10))
        {
            run.Train(1);
            path = TrainingCheckpoint.Save(dir, run.Position, run.Parts);
        }
        using var other = new TinyTrainingRun("adamw", 1, 1, 10);
        var kind = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path, other.Parts));
        Assert.Contains("optimizer 'came'", kind.Message);

        using var noEma = new TinyTrainingRun("came", 1, 1, 10);
        var parts = noEma.Parts;
        var withoutEma = new TrainingStateParts
        {
            TrainableWeights = parts.TrainableWeights, Optimizer = parts.Optimizer, Schedule = parts.Schedule, Random = parts.Random,
        };
        var ema = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path, withoutEma));
        Assert.Contains("--use_ema", ema.Message);

        var renamed = new TrainingStateParts
        {
            TrainableWeights = parts.TrainableWeights.Select(w => (w.Name == "fc1.weight" ? "fc1.lora_A" : w.Name, w.Parameter)).ToList(),
            Optimizer = parts.Optimizer, Schedule = parts.Schedule, Ema = parts.Ema, Random = parts.Random,
        };
        var weights = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path, renamed));
        Assert.Contains("missing 1 (e.g. 'fc1.lora_A')", weights.Message);
        Assert.Contains("unexpected 1 (e.g. 'fc1.weight')", weights.Message);

        Directory.CreateDirectory(Path.Combine(dir, "checkpoint-50"));
        var incomplete = Assert.Throws<FileNotFoundException>(() => TrainingCheckpoint.ReadManifest(Path.Combine(dir, "checkpoint-50")));
        Assert.Contains("manifest.json is missing", incomplete.Message);
    }

    [Fact]
    public void ExtraFilesGoIntoTheFolderBeforeItAppears()
    {
        var dir = TestPaths.NewTempDir("ckpt");
        using var run = new TinyTrainingRun("adamw", 1, 1, 10);
        run.Train(1);
        string path = TrainingCheckpoint.Save(dir, run.Position, run.Parts,
            writeExtraFiles: tmp => File.WriteAllText(Path.Combine(tmp, "pytorch_lora_weights.txt"), "adapter"));
        Assert.Equal("adapter", File.ReadAllText(Path.Combine(path, "pytorch_lora_weights.txt")));
        foreach (var f in new[] { "manifest.json", "trainable.safetensors", "optimizer.safetensors", "optimizer.json", "ema.safetensors", "ema.json", TrainingRandom.FileName })
            Assert.True(File.Exists(Path.Combine(path, f)), f);
        var manifest = TrainingCheckpoint.ReadManifest(path);
        Assert.Equal("cosine", manifest.Schedule["name"]!.GetValue<string>());
        Assert.Equal("adamw", manifest.OptimizerKind);
    }
}
