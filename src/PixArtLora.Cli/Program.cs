using System.CommandLine;
using PixArtLora.Cli;

// `lora`: one small file per verb under Verbs/; the logic lives in the PixArtLora library.
var root = new RootCommand("PixArtLora: LoRA and full fine-tuning, inference and merging for PixArt-α and PixArt-Σ.");
foreach (var verb in new Command[]
         {
             PixArtLora.Cli.Verbs.ModelsVerb.Create(),
             PixArtLora.Cli.Verbs.InspectVerb.Create(),
             PixArtLora.Cli.Verbs.BenchVerb.Create(),
         })
    root.Subcommands.Add(verb);

return CliRunner.Run(root, args);
