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

    static void FullBf16(TrainSettings s)
    {
        s.Mode = "full"; s.MixedPrecision = "bf16"; s.Freeze = new[] { "caption_projection", "attn2" };
        s.MaxTrainSteps = 4; s.GradientAccumulationSteps = 2; s.CheckpointingSteps = 100;
    }

    [Fact]
    public void Bf16_mixed_precision_computes_in_bf16_and_saves_the_float32_masters_it_updates()
    {
        var modelDtypes = new Dictionary<string, ScalarType>();
        var masters = new Dictionary<string, Tensor>();
        var behind = new List<string>();
        bool hasMasters = false;
        var result = Trainer.Run(TrainerWorkspace.Settings("full-bf16", FullBf16), TrainerWorkspace.Options() with
        {
            OnTrained = (model, _) =>
            {
                hasMasters = model.HasMasterWeights;
                foreach (var (name, p) in model.Model.named_parameters()) modelDtypes[name] = p.dtype;
                foreach (var (name, p) in model.Trainable) masters[name] = p.detach().clone().DetachFromDisposeScope();
                // After the last step the bf16 model must hold the masters' values (rounded), not older ones.
                var working = model.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                foreach (var (name, m) in masters)
                    if (!working[name].detach().eq(m.to(ScalarType.BFloat16)).all().item<bool>()) behind.Add(name);
            },
        });
        try
        {
            Assert.All(result.Losses, l => Assert.True(double.IsFinite(l)));
            Assert.True(hasMasters);
            Assert.Empty(behind);
            static bool Frozen(string name) => name.StartsWith("caption_projection.") || name.Contains(".attn2.");
            // The model holds and computes in bf16 throughout; the optimizer's weights are float32, the frozen parts have none.
            Assert.All(modelDtypes, kv => Assert.Equal(ScalarType.BFloat16, kv.Value));
            Assert.Equal(modelDtypes.Keys.Where(n => !Frozen(n)).Order(), masters.Keys.Order());
            Assert.All(masters.Values, m => Assert.Equal(ScalarType.Float32, m.dtype));

            // The saved transformer carries the masters themselves — values bf16 cannot hold — and the frozen parts as the
            // bf16 model held them.
            var saved = Parameters(result.Outputs.TransformerFolder!);
            var initial = Base;
            double finerThanBf16 = 0;
            foreach (var (name, t) in saved)
            {
                if (Frozen(name)) { TensorAssert.Equal(t, initial[name].to(ScalarType.BFloat16).to(ScalarType.Float32), name); continue; }
                TensorAssert.Equal(t, masters[name], name);
                Assert.True((t - initial[name]).abs().max().item<float>() > 0, $"{name} did not change");
                finerThanBf16 = Math.Max(finerThanBf16, (t - t.to(ScalarType.BFloat16).to(ScalarType.Float32)).abs().max().item<float>());
            }
            Assert.True(finerThanBf16 > 0, "the saved weights are bf16 values: the float32 masters were not written");
        }
        finally { foreach (var m in masters.Values) m.Dispose(); }
    }

    [Fact]
    public void Bf16_mixed_precision_resumes_bit_for_bit()
    {
        var straight = Trainer.Run(TrainerWorkspace.Settings("full-bf16-straight", FullBf16), TrainerWorkspace.Options());
        var stop = StopRequest.Manual();
        var split = TrainerWorkspace.Settings("full-bf16-split", FullBf16);
        var first = Trainer.Run(split, TrainerWorkspace.Options(stop: stop) with { AfterStep = (step, _) => { if (step == 2) stop.Request("test"); } });
        Assert.Equal(2, first.GlobalStep);
        split.ResumeFromCheckpoint = "latest";
        var second = Trainer.Run(split, TrainerWorkspace.Options());

        Assert.Equal(straight.Losses, first.Losses.Concat(second.Losses));
        var a = Parameters(straight.Outputs.TransformerFolder!);
        var b = Parameters(second.Outputs.TransformerFolder!);
        foreach (var (name, t) in a) TensorAssert.Equal(b[name], t, name);
    }
}
