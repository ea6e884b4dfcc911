using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using Spectre.Console;

namespace PixArtLora.Cli.Verbs;

/// <summary><c>lora models</c>: the registry's variants with their sizes, token lengths and default settings.</summary>
public static class ModelsVerb
{
    public static Command Create()
    {
        var json = CliOptions.Create<bool>("--json", "Print the table as JSON (one object per variant)");
        var command = new Command("models", "List the PixArt-α / PixArt-Σ variants this tool knows (works offline)") { json };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var rows = ModelRegistry.All.Select(v => (Variant: v, Parameters: PixArtTransformer2DModel.CountParameters(v.TransformerConfig))).ToList();
            if (parse.GetValue(json)) WriteJson(output, rows);
            else WriteTable(output, rows);
            return 0;
        });
        return command;
    }

    static void WriteTable(TextWriter output, List<(ModelVariant Variant, long Parameters)> rows)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        if (output != Console.Out || Console.IsOutputRedirected) console.Profile.Width = 200;   // no wrapping in pipes and logs

        var table = new Table().Border(TableBorder.Rounded).Title("[bold]PixArt variants[/]");
        foreach (var header in new[] { "id", "release", "image", "parameters", "tokens", "pos. scale", "micro-cond.", "VAE (scale)", "buckets train/gen", "defaults" })
            table.AddColumn(new TableColumn($"[bold]{header}[/]"));
        table.Columns[3].RightAligned();
        table.Columns[4].RightAligned();
        foreach (var (v, parameters) in rows)
            table.AddRow(
                v.IsOffline ? $"[yellow]{v.Id}[/]" : $"[green]{v.Id}[/]",
                Markup.Escape(v.Name),
                $"{v.ImageSize}px{(v.MultiScale ? " MS" : "")}",
                parameters.ToString("N0", CultureInfo.InvariantCulture),
                v.CaptionTokens.ToString(CultureInfo.InvariantCulture),
                v.TransformerConfig.ResolvedInterpolationScale.ToString(CultureInfo.InvariantCulture),
                v.UsesMicroConditions ? "yes" : "no",
                $"{v.Vae.Name} ({v.Vae.ScalingFactor.ToString(CultureInfo.InvariantCulture)})",
                $"{v.TrainingAspectRatios.Bins.Count}/{v.InferenceAspectRatios.Bins.Count}",
                $"{v.Sampling.Sampler}, {v.Sampling.Steps} steps, cfg {v.Sampling.GuidanceScale.ToString(CultureInfo.InvariantCulture)}");
        console.Write(table);

        var sources = new Table().Border(TableBorder.Simple).Title("[bold]Hugging Face sources[/]");
        sources.AddColumn("[bold]id[/]").AddColumn("[bold]transformer[/]").AddColumn("[bold]text encoder, tokenizer, VAE[/]").AddColumn("[bold]original checkpoint[/]");
        foreach (var (v, _) in rows)
            sources.AddRow(v.Id,
                Markup.Escape(v.Transformer?.ToString() ?? "none (offline: random or locally trained weights)"),
                Markup.Escape(v.TextEncoder?.Repo ?? "none"),
                Markup.Escape(v.OriginalCheckpoint?.ToString() ?? "none"));
        console.Write(sources);

        console.MarkupLine("Other samplers' default steps (official script): " +
                           string.Join(", ", SamplerDefaults.OfficialSteps.Select(kv => $"{kv.Key} {kv.Value}")) + ".");
        console.MarkupLine("[grey]`lora inspect <id>` lists every tensor of a variant without downloading it.[/]");
    }

    static void WriteJson(TextWriter output, List<(ModelVariant Variant, long Parameters)> rows)
    {
        var items = rows.Select(r => new Dictionary<string, object?>
        {
            ["id"] = r.Variant.Id,
            ["name"] = r.Variant.Name,
            ["family"] = r.Variant.Family.ToString().ToLowerInvariant(),
            ["image_size"] = r.Variant.ImageSize,
            ["multi_scale"] = r.Variant.MultiScale,
            ["parameters"] = r.Parameters,
            ["caption_tokens"] = r.Variant.CaptionTokens,
            ["interpolation_scale"] = r.Variant.TransformerConfig.ResolvedInterpolationScale,
            ["use_additional_conditions"] = r.Variant.UsesMicroConditions,
            ["vae"] = r.Variant.Vae.Name,
            ["vae_scaling_factor"] = r.Variant.Vae.ScalingFactor,
            ["transformer"] = r.Variant.Transformer?.ToString(),
            ["text_encoder"] = r.Variant.TextEncoder?.ToString(),
            ["tokenizer"] = r.Variant.Tokenizer?.ToString(),
            ["vae_source"] = r.Variant.Vae.Source?.ToString(),
            ["original_checkpoint"] = r.Variant.OriginalCheckpoint?.Url,
            ["training_buckets"] = r.Variant.TrainingAspectRatios.Name,
            ["inference_buckets"] = r.Variant.InferenceAspectRatios.Name,
            ["sampler"] = r.Variant.Sampling.Sampler,
            ["steps"] = r.Variant.Sampling.Steps,
            ["guidance_scale"] = r.Variant.Sampling.GuidanceScale,
        });
        output.WriteLine(JsonSerializer.Serialize(items, new JsonSerializerOptions { WriteIndented = true }));
    }
}
