using System.Diagnostics;
using System.Text.Json.Nodes;
using PixArtLora.Diffusion;
using PixArtLora.Training.Checkpoints;
using PixArtLora.Training.Diagnostics;
using PixArtLora.Training.Logging;
using PixArtLora.Training.Optimizers;
using PixArtLora.Training.Progress;
using PixArtLora.Training.Schedules;
using static TorchSharp.torch;

namespace PixArtLora.Training.Loop;

/// <summary>How a run of <see cref="TrainingLoop.Run"/> ended.</summary>
public enum TrainingStopReason { Completed, StopRequested }

/// <summary>
/// The optimizer-step loop: each step draws <c>gradient_accumulation_steps</c> micro-batches, computes the diffusion
/// loss (fresh latent from the cached posterior, timesteps and noise from the run's named random streams), backpropagates,
/// clips, sets the learning rate from the schedule, steps the optimizer and the EMA; then logs, validates at epoch ends,
/// checkpoints every <c>checkpointing_steps</c>, and honours a stop request by checkpointing and returning.
/// Every step runs inside its own dispose scope, so memory stays flat however long the run.
/// </summary>
public sealed class TrainingLoop
{
    public required TrainingPlan Plan { get; init; }
    public required TrainableTransformer Model { get; init; }
    public required ITrainingBatches Batches { get; init; }
    public required TrainingObjective Objective { get; init; }
    public required ITrainingOptimizer Optimizer { get; init; }
    public required LearningRateSchedule Schedule { get; init; }
    public ExponentialMovingAverage? Ema { get; init; }
    public required TrainingRandom Random { get; init; }
    public required MetricsLog Metrics { get; init; }
    public required ITrainingProgress Progress { get; init; }
    public required StopRequest Stop { get; init; }
    public required double VaeScalingFactor { get; init; }
    /// <summary>Total optimizer steps of the run.</summary>
    public required long TotalSteps { get; init; }
    /// <summary>Epochs the run spans (for display).</summary>
    public required long TotalEpochs { get; init; }
    /// <summary>Facts stored with each checkpoint and checked on resume.</summary>
    public required JsonObject CheckpointFacts { get; init; }
    /// <summary>Renders validation images after <paramref name="step"/> (null when no prompt is set).</summary>
    public Action<long, int>? Validate { get; init; }
    /// <summary>Called after every optimizer step with the step number and the loss (tests stop runs from here).</summary>
    public Action<long, double>? AfterStep { get; init; }

    public TrainingStateParts Parts => new()
    {
        TrainableWeights = Model.Trainable, Optimizer = Optimizer, Schedule = Schedule, Ema = Ema, Random = Random,
    };

    /// <summary>The losses of the steps run by this process, in order.</summary>
    public List<double> Losses { get; } = new();
    /// <summary>The newest checkpoint written or resumed from.</summary>
    public string? LastCheckpoint { get; private set; }
    /// <summary>Peak memory of the run: RSS, and the device's memory when training on CUDA.</summary>
    public PeakMemoryTracker Memory => _memory ??= new(MemoryUsage.CudaOrdinal(Plan.Device));
    PeakMemoryTracker? _memory;

    /// <summary>Runs from <paramref name="start"/> until <see cref="TotalSteps"/> or a stop request.</summary>
    public (TrainingStopReason Reason, TrainingPosition Position) Run(TrainingPosition start, string? resumedFrom)
    {
        LastCheckpoint = resumedFrom;
        var s = Plan.Settings;
        int accumulation = s.GradientAccumulationSteps;
        var position = start;
        Model.Model.train();
        Progress.Start(position.GlobalStep, TotalSteps);
        using var batches = Batches.From((int)position.Epoch, (int)position.BatchInEpoch).GetEnumerator();
        var clock = Stopwatch.StartNew();
        long lastCheckpointStep = resumedFrom is null ? -1 : position.GlobalStep;
        long lastValidatedEpoch = position.Epoch;

        while (position.GlobalStep < TotalSteps)
        {
            double stepStart = clock.Elapsed.TotalSeconds;
            double loss = 0;
            long step = position.GlobalStep;
            using (var scope = NewDisposeScope())
            {
                for (int micro = 0; micro < accumulation; micro++)
                {
                    if (!batches.MoveNext()) throw new InvalidOperationException("the data loader ended early (it should cycle through epochs without end)");
                    using var batch = batches.Current;
                    loss += MicroStep(batch, accumulation);
                    position = new TrainingPosition(step, batch.Next.Epoch, batch.Next.BatchIndex);
                }
                TrainingGuards.EnsureFinite(loss, step + 1, "loss", LastCheckpoint);
                double gradNorm = GradientClipping.ClipByGlobalNorm(Model.Trainable, s.MaxGradNorm);
                TrainingGuards.EnsureFinite(gradNorm, step + 1, "gradient norm", LastCheckpoint);
                double lr = Schedule.LearningRateAt(step);
                Optimizer.LearningRate = lr;
                Optimizer.Step();
                Model.SyncWorkingWeights();
                Optimizer.ZeroGrad();
                Ema?.Update();
                position = position with { GlobalStep = step + 1 };
                Losses.Add(loss);
                double seconds = clock.Elapsed.TotalSeconds - stepStart;
                Memory.Sample();
                if (position.GlobalStep % s.LoggingSteps == 0 || position.GlobalStep == TotalSteps)
                {
                    var scalars = new Dictionary<string, double>
                    {
                        ["train/loss"] = loss, ["train/lr"] = lr, ["train/grad_norm"] = gradNorm,
                        ["train/steps_per_second"] = seconds > 0 ? 1.0 / seconds : 0, ["train/epoch"] = position.Epoch,
                    };
                    foreach (var (k, v) in Memory.ToMetrics()) scalars[k] = v;
                    Metrics.Log(position.GlobalStep, scalars);
                }
                // position points at the next batch: after an epoch's last batch it is batch 0 of the next epoch, so the
                // step just taken belongs to epoch position.Epoch (1-based), not the one after it.
                long shownEpoch = position.BatchInEpoch == 0 ? position.Epoch : position.Epoch + 1;
                Progress.Report(new ProgressUpdate(position.GlobalStep, TotalSteps, shownEpoch, TotalEpochs, loss, lr));
            }
            AfterStep?.Invoke(position.GlobalStep, loss);

            // An epoch ended during this step: validate when due (every validation_epochs completed epochs).
            if (Validate is not null && position.Epoch > lastValidatedEpoch && position.Epoch % s.ValidationEpochs == 0
                && position.GlobalStep < TotalSteps)
            {
                lastValidatedEpoch = position.Epoch;
                Validate(position.GlobalStep, (int)position.Epoch);
            }
            if (position.GlobalStep % s.CheckpointingSteps == 0)
            {
                SaveCheckpoint(position);
                lastCheckpointStep = position.GlobalStep;
            }
            if (Stop.IsRequested)
            {
                if (lastCheckpointStep != position.GlobalStep) SaveCheckpoint(position);
                Progress.Message($"stopped by {Stop.Reason} after step {position.GlobalStep}; checkpoint: {LastCheckpoint}");
                return (TrainingStopReason.StopRequested, position);
            }
        }
        return (TrainingStopReason.Completed, position);
    }

    /// <summary>Forward and backward of one micro-batch; returns its loss divided by the accumulation count.</summary>
    double MicroStep(TrainingBatch batch, int accumulation)
    {
        using var scope = NewDisposeScope();
        var device = Plan.Device;
        // A fresh latent from the posterior each time (mean + std·ε), drawn on the CPU so every device sees the same numbers.
        var eps = Random.Randn("latents", batch.LatentMean.shape, ScalarType.Float32, CPU);
        var x0 = ((batch.LatentMean.to(ScalarType.Float32) + batch.LatentStd.to(ScalarType.Float32) * eps) * VaeScalingFactor).to(device);
        long b = x0.shape[0];
        var t = Objective.SampleTimesteps(b, Random.Stream("timesteps"), device);
        var noise = Objective.SampleNoise(x0, Random.Stream("noise"));
        var xt = Objective.AddNoise(x0, noise, t);
        var output = Model.Forward(xt, batch.TextEmbeddings.to(device), t, batch.TextMask.to(device),
            batch.Resolution.to(device), batch.AspectRatio.to(device));
        using var terms = Objective.Losses(output, x0, xt, noise, t);
        var loss = terms.Loss.mean() / accumulation;
        loss.backward();
        Model.CollectGradients();
        return loss.item<float>();
    }

    /// <summary>Writes a checkpoint at <paramref name="position"/> (with the LoRA file inside in LoRA mode), pruning old ones.</summary>
    public string SaveCheckpoint(TrainingPosition position)
    {
        var path = TrainingCheckpoint.Save(Plan.OutputDir, position, Parts, Plan.Settings.CheckpointsTotalLimit, CheckpointFacts,
            Model.WriteCheckpointExtras);
        LastCheckpoint = path;
        Progress.Message($"checkpoint written: {path}");
        return path;
    }
}
