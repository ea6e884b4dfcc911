using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PixArtLora.Hub;
using PixArtLora.Models.Conversion;
using PixArtLora.Registry;
using TorchSharp;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora convert --source PixArt-Sigma-XL-2-1024-MS.pth --variant sigma-1024-ms --output transformer/</c>: an original
/// PixArt checkpoint to a diffusers transformer folder (config.json + safetensors), or with <c>--to original</c> a
/// diffusers transformer back to the original key names (one safetensors file).
/// </summary>
public static class ConvertVerb
{
    public static Command Create()
    {
        var source = CliOptions.Create<string?>("--source",
            "Checkpoint to convert: a .pth file, a Hub file (org/name/path/file.pth), or for --to original a diffusers transformer folder or .safetensors; " +
            "default: the --variant's released .pth, downloaded from the Hub");
        var output = CliOptions.Create<string>("--output", "Folder to write (to diffusers) or .safetensors file (to original)");
        output.Required = true;
        var variant = CliOptions.Create<string?>("--variant", "Registry variant whose transformer config.json to write (e.g. sigma-1024-ms)");
        var config = CliOptions.Create<string?>("--config", "A diffusers transformer config.json (or a folder holding one) to write instead of a variant's");
        var to = CliOptions.Create<string>("--to", "diffusers (default) or original", "diffusers");
        var dtype = CliOptions.Create<string>("--dtype", "Stored dtype: keep, fp32, bf16 or fp16", "keep");
        var key = CliOptions.Create<string?>("--state_dict_key", "Top-level key of the .pth holding the weights (default state_dict; e.g. state_dict_ema)");

        var command = new Command("convert", "Convert original PixArt .pth checkpoints to the diffusers layout, and back")
            { source, output, variant, config, to, dtype, key };
        command.SetAction(async (parse, ct) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var options = new ConversionOptions(ParseDtype(parse.GetValue(dtype)!), parse.GetValue(key));
            string src = await LocateSource(parse.GetValue(source) ?? ReleasedCheckpoint(parse.GetValue(variant)), ct);
            string dst = parse.GetValue(output)!;
            ConversionReport report;
            switch (parse.GetValue(to)?.ToLowerInvariant())
            {
                case "diffusers":
                    var json = TransformerConfig(parse.GetValue(variant), parse.GetValue(config));
                    report = PixArtCheckpointConverter.ToDiffusers(src, dst, json, options);
                    break;
                case "original":
                    if (parse.GetValue(variant) != null || parse.GetValue(config) != null)
                        throw new ArgumentException("--variant/--config apply to --to diffusers only");
                    report = PixArtCheckpointConverter.ToOriginal(src, dst, options);
                    break;
                default:
                    throw new ArgumentException($"--to '{parse.GetValue(to)}': expected diffusers or original");
            }

            if (report.StateDictKey != null) writer.WriteLine($"read '{report.StateDictKey}' of {src}");
            writer.WriteLine($"wrote {report.TensorCount} tensors, {report.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)} parameters:");
            foreach (var f in report.Files) writer.WriteLine($"  {f}");
            foreach (var (k, why) in report.Dropped) writer.WriteLine($"dropped {k}: {why}");
            if (src.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || src.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
                writer.WriteLine("note: .pth files are Python pickles; only tensors and containers were rebuilt. Prefer the safetensors output from now on.");
            return 0;
        });
        return command;
    }

    /// <summary>The config.json to write: from --config, or from the model registry for --variant.</summary>
    static JsonObject TransformerConfig(string? variant, string? configPath)
    {
        if (configPath != null && variant != null) throw new ArgumentException("give --variant or --config, not both");
        if (configPath != null)
        {
            string file = File.Exists(configPath) ? configPath
                : new[] { Path.Combine(configPath, "config.json"), Path.Combine(configPath, "transformer", "config.json") }.FirstOrDefault(File.Exists)
                  ?? throw new FileNotFoundException($"--config {configPath}: no config.json there");
            return JsonNode.Parse(File.ReadAllText(file))?.AsObject() ?? throw new InvalidDataException($"{file}: not a JSON object");
        }
        if (variant != null)
            return JsonNode.Parse(ModelRegistry.Get(variant).TransformerConfig.ToJson())!.AsObject();
        throw new ArgumentException("--to diffusers needs the transformer's config: --variant <id> or --config <config.json>");
    }

    /// <summary>The variant's original release on the Hub, as <c>org/name/file.pth</c>.</summary>
    static string ReleasedCheckpoint(string? variant)
    {
        if (variant == null) throw new ArgumentException("--source is required (or --variant, to convert its released .pth from the Hub)");
        var file = ModelRegistry.Get(variant).OriginalCheckpoint
                   ?? throw new ArgumentException($"--variant {variant} has no released .pth checkpoint; pass --source");
        return $"{file.Repo}/{file.Path}";
    }

    /// <summary>A local file as it is; otherwise <c>org/name/path/in/repo</c> is fetched through the Hub cache.</summary>
    static async Task<string> LocateSource(string source, CancellationToken ct)
    {
        if (File.Exists(source) || Directory.Exists(source)) return source;
        var parts = source.Split('/', 3);
        if (parts.Length == 3 && HubRepo.IsValidId($"{parts[0]}/{parts[1]}"))
        {
            using var client = new HubClient();
            return await HubProgressBars.RunAsync(progress => client.GetFileAsync($"{parts[0]}/{parts[1]}", parts[2], progress: progress, ct: ct));
        }
        throw new FileNotFoundException($"--source {source}: no such file or folder (a Hub file is written org/name/path/file.pth)");
    }

    static torch.ScalarType? ParseDtype(string name) => name.ToLowerInvariant() switch
    {
        "keep" => null,
        "fp32" or "float32" => torch.ScalarType.Float32,
        "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
        "fp16" or "float16" => torch.ScalarType.Float16,
        _ => throw new ArgumentException($"--dtype '{name}': expected keep, fp32, bf16 or fp16"),
    };
}
