using System.Collections.Concurrent;
using System.Diagnostics;
using PixArtLora.Training;
using PixArtLora.Training.Progress;

namespace PixArtLora.Tests.Training;

/// <summary>Trainer tests run one at a time: each trains a model, and they share the feature cache.</summary>
[CollectionDefinition(Name)]
public sealed class TrainerCollection
{
    public const string Name = "Trainer end-to-end";
}

/// <summary>
/// Offline materials shared by the trainer tests: the tiny pipeline and the shapes dataset, generated once per test
/// run under one temporary root (as PIXARTLORA_HOME), one feature cache, and a fresh run folder per training.
/// </summary>
public static class TrainerWorkspace
{
    static readonly Lazy<string> RootFolder = new(() => TestPaths.NewTempDir("trainer-home"));

    /// <summary>Plays the role of $PIXARTLORA_HOME: models/ and datasets/ below it.</summary>
    public static string Home => RootFolder.Value;
    public static string ModelsRoot => Path.Combine(Home, "models");
    public static string SamplesRoot => Path.Combine(Home, "datasets");
    public static string CacheDir => Path.Combine(Home, "cache");

    /// <summary>
    /// Settings of a short LoRA run on the tiny model and 16 shapes at 128 px (4 batches of 4 per epoch) in a new run folder.
    /// </summary>
    public static TrainSettings Settings(string label, Action<TrainSettings>? edit = null)
    {
        var s = new TrainSettings
        {
            Model = "tiny", Dataset = "shapes", MaxTrainSamples = 16, Resolution = 128, CenterCrop = true,
            TrainBatchSize = 4, MaxTrainSteps = 8, LearningRate = 1e-3, LrScheduler = "constant", LrWarmupSteps = 0,
            Rank = 4, Seed = 7, CheckpointingSteps = 1000, OutputDir = TestPaths.NewTempDir("run-" + label), CacheDir = CacheDir,
        };
        edit?.Invoke(s);
        return s;
    }

    /// <summary>Options that keep the console quiet and collect what the trainer says.</summary>
    public static TrainerOptions Options(ConcurrentQueue<string>? lines = null, StopRequest? stop = null) => new()
    {
        Log = m => lines?.Enqueue(m),
        Warn = m => lines?.Enqueue("warning: " + m),
        Progress = new TextProgressReporter(TextWriter.Null, live: false),
        Stop = stop ?? StopRequest.Manual(),
        ModelsRoot = ModelsRoot,
        SamplesRoot = SamplesRoot,
    };

    static Dictionary<string, string> Offline => new() { ["PIXARTLORA_HOME"] = Home, ["HF_HUB_OFFLINE"] = "1" };

    /// <summary>Starts the built <c>lora</c> in the repository root with PIXARTLORA_HOME set to <see cref="Home"/>, offline.</summary>
    public static Process StartLora(params string[] args) => LoraProcess.Start(args, TestPaths.RepoRoot, Offline);

    /// <summary>Runs <c>lora</c> to the end (at most <paramref name="timeout"/>) and returns exit code, stdout and stderr.</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunLora(TimeSpan timeout, params string[] args)
    {
        var r = LoraProcess.Run(timeout, args, TestPaths.RepoRoot, Offline);
        return (r.ExitCode, r.Stdout, r.Stderr);
    }
}
