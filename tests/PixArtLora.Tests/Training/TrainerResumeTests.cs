using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;
using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using PixArtLora.Training.Checkpoints;
using PixArtLora.Training.Loop;

namespace PixArtLora.Tests.Training;

/// <summary>Determinism and exact resume: a stopped and resumed run is the same run.</summary>
[Collection(TrainerCollection.Name)]
public class TrainerResumeTests
{
    /// <summary>Gradient accumulation, flips, caption dropout, LoRA dropout and a warmup+cosine schedule: every source of
    /// state and randomness the checkpoint must carry.</summary>
    static void Busy(TrainSettings s)
    {
        s.MaxTrainSteps = 6;
        s.GradientAccumulationSteps = 2;
        s.RandomFlip = true;
        s.ProportionEmptyPrompts = 0.3;
        s.LoraDropout = 0.1;
        s.LrScheduler = "cosine";
        s.LrWarmupSteps = 2;
        s.CheckpointingSteps = 100;
    }

    [Fact]
    public void Two_n_steps_equal_n_steps_then_resume_then_n_steps_bit_for_bit()
    {
        var straight = Trainer.Run(TrainerWorkspace.Settings("straight", Busy), TrainerWorkspace.Options());

        var stop = StopRequest.Manual();
        var split = TrainerWorkspace.Settings("split", Busy);
        var first = Trainer.Run(split, TrainerWorkspace.Options(stop: stop) with
        {
            // Step 3 of 6 ends in the middle of epoch 1 (two steps of two micro-batches per epoch).
            AfterStep = (step, _) => { if (step == 3) stop.Request("test"); },
        });
        Assert.Equal(TrainingStopReason.StopRequested, first.StopReason);
        Assert.Equal(3, first.GlobalStep);
        Assert.Empty(first.Outputs.All);
        Assert.Equal(Path.Combine(split.OutputDir!, "checkpoint-3"), first.LastCheckpoint);
        Assert.Equal(1, TrainingCheckpoint.ReadManifest(first.LastCheckpoint!).Position.Epoch);

        split.ResumeFromCheckpoint = "latest";
        var second = Trainer.Run(split, TrainerWorkspace.Options());
        Assert.Equal(first.LastCheckpoint, second.ResumedFrom);
        Assert.Equal(TrainingStopReason.Completed, second.StopReason);

        Assert.Equal(straight.Losses.Take(3), first.Losses);
        Assert.Equal(straight.Losses.Skip(3), second.Losses);
        using var a = SafetensorsFile.Open(straight.Outputs.LoraFile!);
        using var b = SafetensorsFile.Open(second.Outputs.LoraFile!);
        Assert.Equal(a.Entries.Keys.Order(), b.Entries.Keys.Order());
        foreach (var key in a.Entries.Keys)
        {
            using var x = a.Read(key);
            using var y = b.Read(key);
            TensorAssert.Equal(y, x, key);
        }
    }

    [Fact]
    public void Another_seed_gives_another_loss_curve()
    {
        var one = Trainer.Run(TrainerWorkspace.Settings("seed-a", s => s.MaxTrainSteps = 3), TrainerWorkspace.Options());
        var same = Trainer.Run(TrainerWorkspace.Settings("seed-b", s => s.MaxTrainSteps = 3), TrainerWorkspace.Options());
        var other = Trainer.Run(TrainerWorkspace.Settings("seed-c", s => { s.MaxTrainSteps = 3; s.Seed = 8; }), TrainerWorkspace.Options());
        Assert.Equal(one.Losses, same.Losses);
        Assert.NotEqual(one.Losses, other.Losses);
    }

    [Fact]
    public void Other_users_of_the_global_generator_do_not_change_the_run()
    {
        // Tests run in parallel and libraries draw from torch's global generator (module initialisation, nn.Dropout):
        // a run's randomness, LoRA dropout included, must come only from its own streams.
        var quiet = Trainer.Run(TrainerWorkspace.Settings("global-a", Busy), TrainerWorkspace.Options());
        var noisy = Trainer.Run(TrainerWorkspace.Settings("global-b", Busy), TrainerWorkspace.Options() with
        {
            AfterStep = (_, _) => { using var drawn = randn(1000); torch.manual_seed(12345); },
        });
        Assert.Equal(quiet.Losses, noisy.Losses);
    }

    [Fact]
    public void Resuming_with_another_setup_is_refused_with_what_differs()
    {
        var settings = TrainerWorkspace.Settings("refuse", s => { s.MaxTrainSteps = 2; s.CheckpointingSteps = 2; });
        Trainer.Run(settings, TrainerWorkspace.Options());
        settings.ResumeFromCheckpoint = "latest";
        settings.MaxTrainSteps = 4;
        settings.Rank = 8;
        var e = Assert.Throws<InvalidDataException>(() => Trainer.Run(settings, TrainerWorkspace.Options()));
        Assert.Contains("lora_rank: checkpoint 4, this run 8", e.Message);
    }

    [Fact]
    public void A_diverging_run_stops_with_a_clear_message_and_keeps_its_last_good_checkpoint()
    {
        // An absurd learning rate blows the adapters up within a few steps; a checkpoint is written after each good step.
        var settings = TrainerWorkspace.Settings("nan", s => { s.MaxTrainSteps = 30; s.LearningRate = 1e15; s.CheckpointingSteps = 1; s.MaxGradNorm = 0; });
        var e = Assert.Throws<NonFiniteLossException>(() => Trainer.Run(settings, TrainerWorkspace.Options()));
        Assert.Contains("training stopped", e.Message);
        Assert.NotNull(e.LastCheckpoint);
        Assert.Contains(e.LastCheckpoint!, e.Message);
        var latest = CheckpointDirectory.FindLatest(settings.OutputDir!);
        Assert.Equal(e.LastCheckpoint, latest);
        Assert.Equal(e.Step - 1, TrainingCheckpoint.ReadManifest(latest!).Position.GlobalStep);
    }
}
