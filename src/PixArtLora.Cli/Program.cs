using System.CommandLine;
using PixArtLora.Cli;

// `lora`: one small file per verb under Verbs/; the logic lives in the PixArtLora library.
// No heap trimming for libtorch's tensors and huge pages for weights, before the first tensor exists (see CpuAllocatorTuning;
// PIXARTLORA_ALLOCATOR=default opts out). `bench` decides itself, from its --allocator option.
if (args.FirstOrDefault() != "bench") PixArtLora.Runtime.CpuAllocatorTuning.Apply();
// Convolutions would otherwise log an NNPACK warning on most CPUs (see LibTorchSettings).
PixArtLora.Runtime.LibTorchSettings.DisableNnpack();
var root = new RootCommand("PixArtLora: LoRA and full fine-tuning, inference and merging for PixArt-α and PixArt-Σ.");
foreach (var verb in new Command[]
         {
             PixArtLora.Cli.Verbs.ModelsVerb.Create(),
             PixArtLora.Cli.Verbs.InspectVerb.Create(),
             PixArtLora.Cli.Verbs.ConvertVerb.Create(),
             PixArtLora.Cli.Verbs.DownloadVerb.Create(),
             PixArtLora.Cli.Verbs.MergeVerb.Create(),
             PixArtLora.Cli.Verbs.ExtractVerb.Create(),
             PixArtLora.Cli.Verbs.InferVerb.Create(),
             PixArtLora.Cli.Verbs.ServeVerb.Create(),
             PixArtLora.Cli.Verbs.TrainVerb.Create(),
             PixArtLora.Cli.Verbs.CacheVerb.Create(),
             PixArtLora.Cli.Verbs.MakeSampleDatasetVerb.Create(),
             PixArtLora.Cli.Verbs.BenchVerb.Create(),
         })
    root.Subcommands.Add(verb);

return CliRunner.Run(root, args);
