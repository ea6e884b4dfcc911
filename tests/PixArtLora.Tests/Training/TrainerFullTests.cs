using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

/// <summary>
/// Full fine-tuning as the official recipe runs it (CAME, mse+vb, EMA), on the tiny model with one part frozen:
/// every trainable weight moves, the frozen part does not, the saved transformer and EMA reload exactly.
/// </summary>
[Collection(TrainerCollection.Name)]
public class TrainerFullTests : IClassFixture<TrainerFullTests.FullRun>
{
    public sealed class FullRun : IDisposable
    {
        public TrainingResult Result { get; }
        public Dictionary<string, Tensor> Trained { get; } = new();
        public Dictionary<string, Tensor> Ema { get; } = new();
        public HashSet<string> TrainableNames { get; } = new();

        public FullRun()
        {
            var settings = TrainerWorkspace.Settings("full", s =>
            {
                s.Mode = "full";
                s.Optimizer = "came";
                s.LearningRate = 2e-4;
                s.AdamWeightDecay = 0;
                s.Loss = "mse+vb";
                s.UseEma = true;
                s.EmaDecay = 0.8;
                s.Freeze = new[] { "caption_projection" };
                s.MaxTrainSteps = 8;
                s.CheckpointingSteps = 8;
            });
            Result = Trainer.Run(settings, TrainerWorkspace.Options() with
            {
                OnTrained = (model, ema) =>
                {
                    foreach (var (name, p) in model.Model.named_parameters()) Trained[name] = p.detach().clone().DetachFromDisposeScope();
                    foreach (var (name, t) in ema!.Shadow) Ema[name] = t.clone().DetachFromDisposeScope();
                    foreach (var (name, _) in model.Trainable) TrainableNames.Add(name);
                },
            });
        }

        public void Dispose()
        {
            foreach (var t in Trained.Values.Concat(Ema.Values)) t.Dispose();
        }
    }

    readonly FullRun _run;

    public TrainerFullTests(FullRun run) => _run = run;

    static Dictionary<string, Tensor> Parameters(string folder)
    {
        using var model = PixArtTransformer2DModel.FromPretrained(folder);
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
    }

    static Dictionary<string, Tensor> Base => Parameters(Path.Combine(TinyModels.EnsurePipeline(TrainerWorkspace.ModelsRoot), "transformer"));

    [Fact]
    public void Every_trainable_weight_changed_and_the_frozen_part_did_not()
    {
        var initial = Base;
        Assert.All(_run.Trained.Keys, name => Assert.Equal(!name.StartsWith("caption_projection."), _run.TrainableNames.Contains(name)));
        foreach (var (name, trained) in _run.Trained)
        {
            if (_run.TrainableNames.Contains(name))
                Assert.True((trained - initial[name]).abs().max().item<float>() > 0, $"{name} did not change");
            else TensorAssert.Equal(trained, initial[name], name);
        }
        Assert.All(_run.Result.Losses, l => Assert.True(double.IsFinite(l)));
    }

    [Fact]
    public void The_saved_transformer_reloads_identically_in_diffusers_layout()
    {
        string folder = _run.Result.Outputs.TransformerFolder!;
        Assert.True(File.Exists(Path.Combine(folder, "config.json")));
        Assert.True(File.Exists(Path.Combine(folder, "diffusion_pytorch_model.safetensors")));
        var saved = Parameters(folder);
        Assert.Equal(_run.Trained.Keys.Order(), saved.Keys.Order());
        foreach (var (name, t) in saved) TensorAssert.Equal(t, _run.Trained[name], name);
    }

    [Fact]
    public void The_ema_transformer_holds_the_average_which_lags_behind_the_raw_weights()
    {
        var ema = Parameters(_run.Result.Outputs.EmaTransformerFolder!);
        var initial = Base;
        double rawDistance = 0, emaDistance = 0;
        foreach (var name in _run.TrainableNames)
        {
            TensorAssert.Equal(ema[name], _run.Ema[name], name);
            rawDistance += (_run.Trained[name] - initial[name]).square().sum().item<float>();
            emaDistance += (ema[name] - initial[name]).square().sum().item<float>();
        }
        Assert.True(emaDistance > 0, "the EMA should have moved from the initial weights");
        Assert.True(emaDistance < rawDistance, $"EMA distance² from the start {emaDistance:G4} should be below the raw weights' {rawDistance:G4}");
        foreach (var name in _run.Trained.Keys.Where(n => !_run.TrainableNames.Contains(n)))
            TensorAssert.Equal(ema[name], _run.Trained[name], name);
    }

    [Fact]
    public void Bf16_mixed_precision_keeps_frozen_parts_in_bf16_and_trainable_weights_in_fp32()
    {
        var dtypes = new Dictionary<string, ScalarType>();
        var result = Trainer.Run(TrainerWorkspace.Settings("full-bf16", s =>
            {
                s.Mode = "full"; s.MixedPrecision = "bf16"; s.Freeze = new[] { "caption_projection", "attn2" }; s.MaxTrainSteps = 2;
            }),
            TrainerWorkspace.Options() with
            {
                OnTrained = (model, _) => { foreach (var (name, p) in model.Model.named_parameters()) dtypes[name] = p.dtype; },
            });
        Assert.All(result.Losses, l => Assert.True(double.IsFinite(l)));
        Assert.All(dtypes, kv => Assert.Equal(
            kv.Key.StartsWith("caption_projection.") || kv.Key.Contains(".attn2.") ? ScalarType.BFloat16 : ScalarType.Float32, kv.Value));
    }
}
