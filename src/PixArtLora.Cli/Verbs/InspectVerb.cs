using System.CommandLine;
using System.Globalization;
using PixArtLora.IO;
using PixArtLora.Models.Common;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora inspect &lt;variant | model folder | .safetensors file&gt;</c>: one line per tensor (<c>name shape dtype</c>)
/// and the total. A variant is built on the meta device, so nothing is allocated or downloaded.
/// </summary>
public static class InspectVerb
{
    public static Command Create()
    {
        var target = new Argument<string>("target")
        {
            Description = "A registry variant id (see `lora models`), a diffusers model folder, or a .safetensors / .safetensors.index.json file",
        };
        var command = new Command("inspect", "List the parameters (name, shape, dtype) of a variant, model folder or safetensors file") { target };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            string value = parse.GetValue(target)!;
            if (File.Exists(value)) InspectCheckpoint(output, value, null);
            else if (Directory.Exists(value)) InspectFolder(output, value);
            else if (ModelRegistry.Find(value) is { } variant) InspectVariant(output, variant);
            else
                throw new ArgumentException(
                    $"'{value}' is neither a file, a folder, nor a registry variant (known: {string.Join(", ", ModelRegistry.All.Select(v => v.Id))})");
            return 0;
        });
        return command;
    }

    static void InspectVariant(TextWriter output, ModelVariant variant)
    {
        output.WriteLine($"# {variant.Id}: {variant.Name} transformer, built on the meta device (nothing downloaded)");
        Write(output, PixArtTransformer2DModel.DescribeParameters(variant.TransformerConfig));
    }

    static void InspectFolder(TextWriter output, string folder)
    {
        // A pipeline folder (model_index.json, transformer/, vae/ …) is inspected through its transformer.
        string model = File.Exists(Path.Combine(folder, "transformer", "config.json")) ? Path.Combine(folder, "transformer") : folder;
        string configPath = Path.Combine(model, "config.json");
        PixArtTransformerConfig? config = null;
        if (File.Exists(configPath))
        {
            try { config = PixArtTransformerConfig.Load(configPath); }
            catch (InvalidDataException e) { output.WriteLine($"# {configPath} is not a PixArt transformer config ({e.Message}); listing the checkpoint only"); }
        }
        InspectCheckpoint(output, model, config);
    }

    static void InspectCheckpoint(TextWriter output, string path, PixArtTransformerConfig? config)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(path, "diffusion_pytorch_model");
        output.WriteLine($"# {checkpoint.Source}");
        var stored = TensorListing.Of(checkpoint);
        Write(output, stored);
        if (config is null) return;
        var problems = TensorListing.Compare(PixArtTransformer2DModel.DescribeParameters(config), stored);
        if (problems.Count == 0)
            output.WriteLine("# every tensor matches the PixArtTransformer2DModel described by config.json");
        else
        {
            output.WriteLine($"# {problems.Count} difference(s) from the PixArtTransformer2DModel described by config.json:");
            foreach (var p in problems) output.WriteLine("#   " + p);
        }
    }

    static void Write(TextWriter output, IReadOnlyList<TensorInfo> tensors)
    {
        foreach (var t in tensors) output.WriteLine($"{t.Name} {t.ShapeText} {t.Dtype}");
        long total = tensors.Sum(t => t.ElementCount);
        output.WriteLine($"total: {total.ToString("N0", CultureInfo.InvariantCulture)} parameters in {tensors.Count} tensors");
    }
}
