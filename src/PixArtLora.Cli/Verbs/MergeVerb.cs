using System.CommandLine;
using PixArtLora.Lora;

namespace PixArtLora.Cli.Verbs;

/// <summary><c>lora merge</c>: bakes one or more LoRAs into a base transformer and writes it in diffusers layout.</summary>
public static class MergeVerb
{
    public static Command Create()
    {
        var baseModel = CliOptions.Create<string>("--base", "base model: a diffusers pipeline folder or its transformer folder");
        baseModel.Required = true;
        var loras = CliOptions.Create<string[]>("--lora", "LoRA file or PEFT folder, optionally with a strength: a.safetensors:0.8 (repeat for several)");
        loras.Required = true;
        var output = CliOptions.Create<string>("--output", "folder to write the merged transformer to (config.json + safetensors); replaced atomically");
        output.Required = true;
        var shardSize = CliOptions.Create<string>("--max_shard_size", "largest safetensors shard, e.g. 10GB or 500MB", "10GB");
        var verify = CliOptions.Create<bool>("--verify", "afterwards, run base + LoRA (un-merged) and the merged model on a random input and report the max difference");
        var device = CliOptions.Create<string>("--device", "device for --verify: cpu | cuda", "cpu");

        var command = new Command("merge", "Merge LoRAs into a base transformer: W' = W + strength · (alpha/r) · B·A, computed in fp32, stored in the base dtype.")
        {
            baseModel, loras, output, shardSize, verify, device,
        };
        command.SetAction(parse =>
        {
            var sources = parse.GetValue(loras)!.Select(LoraMergeSource.Parse).ToList();
            var report = LoraMerge.MergeCheckpoint(parse.GetValue(baseModel)!, sources, parse.GetValue(output)!,
                LoraMerge.ParseSize(parse.GetValue(shardSize)!), Console.WriteLine, HubProgressBars.FetchComponent);
            foreach (var w in report.Warnings) Console.Error.WriteLine($"warning: {w}");
            Console.WriteLine($"merged {report.WeightsChanged} weights of {report.TensorsWritten} tensors into {report.Output}");
            foreach (var f in report.Files) Console.WriteLine($"  {Path.GetFileName(f)}");
            if (parse.GetValue(verify))
            {
                var v = LoraMergeVerify.Verify(parse.GetValue(baseModel)!, sources, report.Output, TorchSharp.torch.device(parse.GetValue(device)!), fetch: HubProgressBars.FetchComponent);
                Console.WriteLine($"verify on a random latent [{string.Join(", ", v.LatentShape)}]: max |base+LoRA − merged| = {v.MaxAbsDifference:G3} " +
                                  $"(the LoRA changes the output by up to {v.MaxAbsAdapterEffect:G3}; outputs up to {v.MaxAbsOutput:G3})");
            }
            return 0;
        });
        return command;
    }
}
