using PixArtLora.Hub;
using PixArtLora.Training.Loop;
using PixArtLora.Training.Progress;

namespace PixArtLora.Training;

/// <summary>How <see cref="Trainer.Run"/> talks to its caller; every member has a console default.</summary>
public sealed record TrainerOptions
{
    /// <summary>Informational lines (what was loaded, cached, written). Default: standard output.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Warnings (skipped images, changed settings on resume). Default: standard error.</summary>
    public Action<string>? Warn { get; init; }
    /// <summary>The step display. Default: <see cref="TextProgressReporter.ForConsole"/>.</summary>
    public ITrainingProgress? Progress { get; init; }
    /// <summary>Stop signal checked after each step. Default: SIGINT/SIGTERM for the duration of the run.</summary>
    public StopRequest? Stop { get; init; }
    /// <summary>Download progress of models and datasets fetched from the Hub.</summary>
    public IProgress<HubFileProgress>? HubProgress { get; init; }
    /// <summary>Hub settings (default: from the environment, as huggingface_hub reads it).</summary>
    public HubOptions? Hub { get; init; }
    /// <summary>Where the offline tiny model is generated (default ~/.cache/pixartlora/models).</summary>
    public string? ModelsRoot { get; init; }
    /// <summary>Where sample datasets such as <c>shapes</c> are generated (default ~/.cache/pixartlora/datasets).</summary>
    public string? SamplesRoot { get; init; }
    /// <summary>Called after every optimizer step with the step number and its loss.</summary>
    public Action<long, double>? AfterStep { get; init; }
    /// <summary>
    /// Called with the trained model (adapters attached) and its EMA after a completed run's outputs are written, before
    /// both are freed: for applications that keep using the model, and for tests that compare it with the saved files.
    /// </summary>
    public Action<TrainableTransformer, ExponentialMovingAverage?>? OnTrained { get; init; }
}

/// <summary>What a training run did and where its results are.</summary>
public sealed record TrainingResult
{
    /// <summary>The run folder.</summary>
    public required string OutputDir { get; init; }
    /// <summary>Optimizer steps completed, counting those of resumed-from runs.</summary>
    public required long GlobalStep { get; init; }
    public required long TotalSteps { get; init; }
    /// <summary>Completed, or stopped early by a signal (then <see cref="LastCheckpoint"/> holds the state).</summary>
    public required TrainingStopReason StopReason { get; init; }
    /// <summary>The final results; empty when the run stopped early.</summary>
    public required TrainingOutputs Outputs { get; init; }
    public string? LastCheckpoint { get; init; }
    /// <summary>The checkpoint this run resumed from, if any.</summary>
    public string? ResumedFrom { get; init; }
    /// <summary>Loss of every step this process ran.</summary>
    public required IReadOnlyList<double> Losses { get; init; }
    /// <summary>Validation images written (PNG paths).</summary>
    public required IReadOnlyList<string> ValidationImages { get; init; }
    public required TimeSpan Elapsed { get; init; }
    public long? PeakResidentBytes { get; init; }
    public required long TrainableParameters { get; init; }
}
