using System.Text.Json.Nodes;
using PixArtLora.Training.Optimizers;
using PixArtLora.Training.Schedules;
using TorchSharp.Modules;

namespace PixArtLora.Training.Checkpoints;

/// <summary>
/// The live objects a checkpoint captures and a resume restores in place: the trainable weights by name,
/// the optimizer, the learning-rate schedule, the EMA (if any) and the random streams.
/// </summary>
public sealed class TrainingStateParts
{
    /// <summary>Every weight that training changes (LoRA adapters, or the transformer in full mode), by published name.</summary>
    public required IReadOnlyList<(string Name, Parameter Parameter)> TrainableWeights { get; init; }
    public required ITrainingOptimizer Optimizer { get; init; }
    public required LearningRateSchedule Schedule { get; init; }
    public ExponentialMovingAverage? Ema { get; init; }
    public required TrainingRandom Random { get; init; }
}

/// <summary>
/// The <c>manifest.json</c> of a checkpoint folder. Its presence marks the folder complete (it is written
/// last, and the folder only gets its final name once everything is in it).
/// </summary>
public sealed record TrainingCheckpointManifest(
    string Path,
    int FormatVersion,
    TrainingPosition Position,
    string OptimizerKind,
    JsonObject Schedule,
    bool HasEma,
    long Seed,
    DateTimeOffset CreatedUtc,
    JsonObject Extra);
