using System.CommandLine;
using PixArtLora.Training;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora cache --dataset ... [same settings as train]</c>: encodes every caption with T5 and every training image (as the
/// run's epochs crop and flip it) with the VAE into the feature cache, so that <c>lora train</c> with the same settings
/// loads neither. Running it again encodes only what changed.
/// </summary>
public static class CacheVerb
{
    public static Command Create()
    {
        var command = new Command("cache", "Precompute the text and latent features of a training run (takes the same settings as train)");
        var settings = new SettingsOptions<TrainSettings>(command);
        command.SetAction(parse =>
        {
            var (cacheDir, captions, images) = Trainer.PrepareFeatures(settings.Bind(parse), new TrainerOptions { HubProgress = new TrainVerb.DownloadLines() });
            parse.InvocationConfiguration.Output.WriteLine($"feature cache: {cacheDir} ({captions} captions and {images} images encoded now)");
            return 0;
        });
        return command;
    }
}
