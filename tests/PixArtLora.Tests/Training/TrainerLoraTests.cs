using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using PixArtLora.Training.Checkpoints;
using PixArtLora.Training.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

/// <summary>
/// One LoRA run on the tiny model and the shapes dataset, checked the way a user would: the loss fell, the base model
/// is untouched, the LoRA file reproduces the trained model, checkpoints are pruned, the logs parse back.
/// </summary>
[Collection(TrainerCollection.Name)]
public class TrainerLoraTests : IClassFixture<TrainerLoraTests.LoraRun>
{
    public sealed class LoraRun : IDisposable
    {
        public TrainingResult Result { get; }
        public TrainSettings Settings { get; }
        public ConcurrentQueue<string> Lines { get; } = new();
        /// <summary>Every base (non-adapter) weight of the trained model, copied before it was freed.</summary>
        public Dictionary<string, Tensor> BaseWeightsAfter { get; } = new();
        /// <summary>The trained model's prediction on <see cref="Probe"/>.</summary>
        public Tensor TrainedPrediction { get; private set; } = null!;
        /// <summary>Resident memory after steps 10 and 40.</summary>
        public Dictionary<long, long> Resident { get; } = new();

        public LoraRun()
        {
            Settings = TrainerWorkspace.Settings("lora", s =>
            {
                s.MaxTrainSteps = 40;
                s.CheckpointingSteps = 10;
                s.CheckpointsTotalLimit = 2;
                s.LoraTargets = "all-linear";
                s.LearningRate = 3e-3;
                s.RandomFlip = true;
            });
            Result = Trainer.Run(Settings, TrainerWorkspace.Options(Lines) with
            {
                AfterStep = (step, _) =>
                {
                    if (step is 10 or 40) { GC.Collect(); GC.WaitForPendingFinalizers(); Resident[step] = MemoryUsage.ResidentBytes() ?? 0; }
                },
                OnTrained = (model, _) =>
                {
                    foreach (var (name, p) in model.Model.named_parameters())
                        if (!name.Contains(".lora_")) BaseWeightsAfter[name] = p.detach().clone().DetachFromDisposeScope();
                    using (no_grad()) TrainedPrediction = Probe(model.Model).DetachFromDisposeScope();
                },
            });
        }

        public void Dispose()
        {
            foreach (var t in BaseWeightsAfter.Values) t.Dispose();
            TrainedPrediction?.Dispose();
        }
    }

    readonly LoraRun _run;

    public TrainerLoraTests(LoraRun run) => _run = run;

    static string TinyTransformer => Path.Combine(TinyModels.EnsurePipeline(TrainerWorkspace.ModelsRoot), "transformer");

    /// <summary>A fixed input: latents at two timesteps with random caption features (same every call).</summary>
    public static Tensor Probe(PixArtTransformer2DModel model)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(11);
        var x = randn(new long[] { 2, 4, 16, 16 }, generator: g);
        var text = randn(new long[] { 2, 32, model.Config.CaptionChannels!.Value }, generator: g);
        var mask = ones(2, 32, int64);
        return model.forward(x, text, tensor(new float[] { 150, 750 }), mask).MoveToOuterDisposeScope();
    }

    [Fact]
    public void The_loss_falls_markedly()
    {
        var losses = _run.Result.Losses;
        Assert.Equal(40, losses.Count);
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        double first = losses.Take(8).Average(), last = losses.TakeLast(8).Average();
        Assert.True(last < 0.7 * first, $"mean loss of the first 8 steps {first:F4}, of the last 8 {last:F4}: expected a fall of at least 30%");
    }

    [Fact]
    public void Base_weights_are_exactly_those_of_the_base_model_file()
    {
        using var base_ = PixArtTransformer2DModel.FromPretrained(TinyTransformer);
        var expected = base_.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(expected.Keys.Order(), _run.BaseWeightsAfter.Keys.Order());
        foreach (var (name, after) in _run.BaseWeightsAfter) TensorAssert.Equal(after, expected[name], name);
    }

    [Fact]
    public void The_saved_lora_loads_back_onto_the_base_model_and_reproduces_the_trained_prediction()
    {
        var outputs = _run.Result.Outputs;
        Assert.NotNull(outputs.LoraFile);
        Assert.True(File.Exists(outputs.LoraFile));
        Assert.True(File.Exists(Path.Combine(outputs.PeftFolder!, "adapter_model.safetensors")));
        Assert.True(File.Exists(Path.Combine(outputs.PeftFolder!, "adapter_config.json")));
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TinyTransformer);
        Tensor baseline;
        using (no_grad()) baseline = Probe(model);
        foreach (var source in new[] { outputs.LoraFile!, outputs.PeftFolder! })
        {
            using var net = LoraNetwork.Attach(model);
            using var weights = LoraFile.Read(source, net.Catalog());
            Assert.Equal("tiny", weights.Metadata[LoraFile.MetadataBaseModel]);
            // all-linear: every Linear of the model (the patch embedding is a convolution).
            Assert.Equal(model.named_modules().Count(m => m.module is TorchSharp.Modules.Linear && !m.name.Contains(".lora_")), weights.Modules.Count);
            net.LoadAdapter("trained", weights);
            using (no_grad())
            {
                var prediction = Probe(model);
                TensorAssert.AllClose(prediction, _run.TrainedPrediction, 1e-6, 1e-5, source);
                Assert.True((prediction - baseline).abs().max().item<float>() > 1e-3, "the trained LoRA should change the prediction");
            }
        }
    }

    [Fact]
    public void Only_the_newest_checkpoints_are_kept_and_each_holds_a_usable_lora()
    {
        var kept = CheckpointDirectory.List(_run.Result.OutputDir).Select(c => c.Step).ToList();
        Assert.Equal(new long[] { 30, 40 }, kept);
        var latest = CheckpointDirectory.FindLatest(_run.Result.OutputDir)!;
        var manifest = TrainingCheckpoint.ReadManifest(latest);
        Assert.Equal(40, manifest.Position.GlobalStep);
        Assert.Equal("lora", manifest.Extra["mode"]!.GetValue<string>());
        using var model = PixArtTransformer2DModel.FromPretrained(TinyTransformer);
        using var net = LoraNetwork.Attach(model);
        using var inside = LoraFile.Read(Path.Combine(latest, "pytorch_lora_weights.safetensors"), net.Catalog());
        using var final = LoraFile.Read(_run.Result.Outputs.LoraFile!, net.Catalog());
        foreach (var (name, m) in final.Modules)
        {
            TensorAssert.Equal(inside.Modules[name].Down, m.Down, name + " A");
            TensorAssert.Equal(inside.Modules[name].Up, m.Up, name + " B");
        }
    }

    [Fact]
    public void Tensorboard_and_metrics_jsonl_hold_the_same_losses()
    {
        var logs = Path.Combine(_run.Result.OutputDir, "logs");
        var file = Assert.Single(Directory.GetFiles(logs, "events.out.tfevents.*"));
        var events = TensorBoardEventReader.Read(file);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        var tbLoss = events.SelectMany(e => e.Values.Where(v => v.Tag == "train/loss").Select(v => (e.Step, Value: v.Simple!.Value)))
            .ToDictionary(x => x.Step, x => x.Value);
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), tbLoss.Keys.Order());

        var jsonl = File.ReadAllLines(Path.Combine(_run.Result.OutputDir, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!.AsObject()).Where(o => o.ContainsKey("train/loss")).ToList();
        Assert.Equal(40, jsonl.Count);
        foreach (var row in jsonl)
        {
            long step = row["step"]!.GetValue<long>();
            double loss = row["train/loss"]!.GetValue<double>();
            Assert.Equal((float)loss, tbLoss[step]);
            Assert.Equal(_run.Result.Losses[(int)step - 1], loss);
            Assert.True(row["wall_time"]!.GetValue<double>() > 1.6e9, "wall_time is Unix seconds");
        }
        Assert.Contains(jsonl, r => r.ContainsKey("memory/peak_rss_bytes"));
    }

    [Fact]
    public void Run_folder_records_the_settings_and_says_where_outputs_went()
    {
        var settings = JsonNode.Parse(File.ReadAllText(Path.Combine(_run.Result.OutputDir, Trainer.SettingsFileName)))!;
        Assert.Equal("tiny", settings["pretrained_model_name_or_path"]!.GetValue<string>());
        Assert.Equal(40, settings["max_train_steps"]!.GetValue<int>());
        Assert.Contains(_run.Lines, l => l.Contains(_run.Result.Outputs.LoraFile!));
        Assert.True(_run.Result.PeakResidentBytes > 0);
        using var file = SafetensorsFile.Open(_run.Result.Outputs.LoraFile!);
        Assert.Equal(_run.Result.TrainableParameters, file.Entries.Where(e => !e.Key.EndsWith(".alpha")).Sum(e => e.Value.ElementCount));
    }

    [Fact]
    public void Memory_stays_flat_across_steps()
    {
        // Every step runs in a dispose scope: 30 more steps must not grow the process by more than noise.
        long growth = _run.Resident[40] - _run.Resident[10];
        Assert.True(growth < 48L << 20, $"resident memory grew by {MemoryUsage.Format(growth)} from step 10 to step 40");
    }

    [Fact]
    public void Bf16_mixed_precision_keeps_the_base_in_bf16_and_trains_fp32_adapters()
    {
        var dtypes = new Dictionary<string, ScalarType>();
        var result = Trainer.Run(TrainerWorkspace.Settings("bf16", s => { s.MixedPrecision = "bf16"; s.MaxTrainSteps = 4; }),
            TrainerWorkspace.Options() with
            {
                OnTrained = (model, _) => { foreach (var (name, p) in model.Model.named_parameters()) dtypes[name] = p.dtype; },
            });
        Assert.All(result.Losses, l => Assert.True(double.IsFinite(l)));
        Assert.All(dtypes, kv => Assert.Equal(kv.Key.Contains(".lora_") ? ScalarType.Float32 : ScalarType.BFloat16, kv.Value));
        using var file = SafetensorsFile.Open(result.Outputs.LoraFile!);
        Assert.All(file.Entries.Values, e => Assert.Equal(ScalarType.Float32, e.ScalarType));
    }
}
