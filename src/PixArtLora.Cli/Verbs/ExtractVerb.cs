using System.CommandLine;
using System.Globalization;
using PixArtLora.IO;
using PixArtLora.Lora;
using TorchSharp;

namespace PixArtLora.Cli.Verbs;

/// <summary><c>lora extract</c>: a LoRA of a given rank from a full fine-tune and its base, by truncated SVD of each weight change.</summary>
public static class ExtractVerb
{
    public static Command Create()
    {
        var baseModel = CliOptions.Create<string>("--base", "base model: a diffusers pipeline folder or its transformer folder");
        baseModel.Required = true;
        var tuned = CliOptions.Create<string>("--tuned", "the fine-tuned model, same layout as --base");
        tuned.Required = true;
        var rank = CliOptions.Create<int>("--rank", "rank of the extracted LoRA", 32);
        var output = CliOptions.Create<string>("--output", "LoRA file to write (.safetensors); with --peft, a PEFT folder");
        output.Required = true;
        var targets = CliOptions.Create<string>("--targets", "layers: attention | attention+ff | all-linear | comma-separated names", "all-linear");
        var blocks = CliOptions.Create<string?>("--blocks", "only these transformer blocks, e.g. 10-27");
        var peft = CliOptions.Create<bool>("--peft", "write a PEFT folder (adapter_model.safetensors + adapter_config.json) instead of one file");
        var saveDtype = CliOptions.Create<string>("--save_dtype", "dtype of the stored factors: fp32 | bf16 | fp16", "fp32");
        var device = CliOptions.Create<string>("--device", "where to run the SVDs: cpu | cuda", "cpu");

        var command = new Command("extract", "Extract a LoRA from a full fine-tune: truncated SVD of each targeted weight change, with the energy each module keeps.")
        {
            baseModel, tuned, rank, output, targets, blocks, peft, saveDtype, device,
        };
        command.SetAction(parse =>
        {
            var t = LoraTargets.Parse(parse.GetValue(targets)!);
            if (parse.GetValue(blocks) is { } b) t = t with { Blocks = LoraTargets.ParseBlocks(b) };
            var dtype = parse.GetValue(saveDtype)!.ToLowerInvariant() switch
            {
                "fp32" or "float32" => torch.ScalarType.Float32,
                "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
                "fp16" or "float16" => torch.ScalarType.Float16,
                var other => throw new ArgumentException($"--save_dtype {other}: expected fp32, bf16 or fp16"),
            };
            using var baseCkpt = SafetensorsCheckpoint.Open(TransformerFolder.Resolve(parse.GetValue(baseModel)!, HubProgressBars.FetchComponent), TransformerFolder.WeightsBaseName);
            using var tunedCkpt = SafetensorsCheckpoint.Open(TransformerFolder.Resolve(parse.GetValue(tuned)!, HubProgressBars.FetchComponent), TransformerFolder.WeightsBaseName);
            using var x = LoraExtract.Extract(baseCkpt, tunedCkpt, parse.GetValue(rank), t, torch.device(parse.GetValue(device)!));

            foreach (var m in x.Modules)
                Console.WriteLine($"{m.Module,-60} rank {m.Rank,4}  retained energy {m.RetainedEnergy.ToString("P2", CultureInfo.InvariantCulture),8}  |ΔW| {m.DeltaNorm.ToString("G4", CultureInfo.InvariantCulture)}");
            Console.WriteLine($"total retained energy {x.TotalRetainedEnergy.ToString("P2", CultureInfo.InvariantCulture)} over {x.Modules.Count} modules");
            if (x.Unchanged.Count > 0) Console.WriteLine($"{x.Unchanged.Count} targeted layers did not change and are left out");
            foreach (var u in x.Unrepresented.Take(20)) Console.Error.WriteLine($"warning: changed but not representable as LoRA: {u}");
            if (x.Unrepresented.Count > 20) Console.Error.WriteLine($"warning: … and {x.Unrepresented.Count - 20} more changed tensors not representable as LoRA");

            string path = parse.GetValue(output)!;
            if (parse.GetValue(peft)) LoraFile.WritePeftFolder(path, x.Weights, dtype: dtype);
            else LoraFile.Write(path, x.Weights, dtype: dtype);
            Console.WriteLine($"wrote {path}");
            return 0;
        });
        return command;
    }
}
