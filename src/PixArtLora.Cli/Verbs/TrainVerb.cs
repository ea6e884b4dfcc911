using System.CommandLine;
using PixArtLora.Hub;
using PixArtLora.Training;
using PixArtLora.Training.Loop;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora train [-c recipe.yaml] [--flags]</c>: LoRA (default) or full fine-tuning; every setting of <see cref="TrainSettings"/>
/// as --snake_case or --kebab-case, the same keys in the YAML file, flags overriding it. Exit code 0 when the run finished,
/// 130 when SIGINT/SIGTERM stopped it after writing a checkpoint.
/// </summary>
public static class TrainVerb
{
    /// <summary>Exit code of a run stopped by a signal (after its checkpoint was written), as shells report SIGINT.</summary>
    public const int StoppedExitCode = 130;

    public static Command Create()
    {
        var command = new Command("train", "Train a LoRA, or fine-tune the whole transformer, on an image-caption dataset");
        var settings = new SettingsOptions<TrainSettings>(command);
        command.SetAction(parse =>
        {
            var result = Trainer.Run(settings.Bind(parse), new TrainerOptions { HubProgress = new DownloadLines() });
            var output = parse.InvocationConfiguration.Output;
            if (result.StopReason == TrainingStopReason.StopRequested)
            {
                output.WriteLine($"stopped after step {result.GlobalStep} of {result.TotalSteps}; checkpoint: {result.LastCheckpoint}");
                return StoppedExitCode;
            }
            output.WriteLine($"outputs in {result.OutputDir}:");
            foreach (var path in result.Outputs.All) output.WriteLine($"  {path}");
            foreach (var image in result.ValidationImages.TakeLast(Math.Min(4, result.ValidationImages.Count))) output.WriteLine($"  {image}");
            return 0;
        });
        return command;
    }

    /// <summary>One line per file actually transferred (cached files are silent): training output stays readable.</summary>
    internal sealed class DownloadLines : IProgress<HubFileProgress>
    {
        public void Report(HubFileProgress p)
        {
            if (p.Stage == HubFileStage.Started) Console.Error.WriteLine($"downloading {p.Repo.Id}/{p.File}");
            else if (p.Stage == HubFileStage.Completed) Console.Error.WriteLine($"downloaded  {p.Repo.Id}/{p.File} ({p.BytesDone:N0} bytes)");
        }
    }
}
