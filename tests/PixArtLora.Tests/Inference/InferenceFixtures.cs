using System.Diagnostics;
using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Inference;

/// <summary>Shared files for the inference tests: the tiny pipeline, LoRA files for it, and a runner for <c>lora infer</c>.</summary>
public static class InferenceFixtures
{
    /// <summary>Where the tests generate the tiny model (once per machine; never the user's own cache).</summary>
    public static string ModelsRoot { get; } = Path.Combine(Path.GetTempPath(), "pixartlora-tests", "models");

    /// <summary>The tiny pipeline folder (generated on first use).</summary>
    public static string TinyFolder => TinyModels.EnsurePipeline(ModelsRoot);

    /// <summary>
    /// Writes a LoRA for every Linear of the attention layers of the transformer in <paramref name="transformerFolder"/>
    /// (default: the tiny one), with random non-zero A and B so that it visibly changes the output.
    /// </summary>
    public static string WriteLora(string path, string? transformerFolder = null, int rank = 4, ulong seed = 7, double strength = 1.0,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        transformerFolder ??= Path.Combine(TinyFolder, "transformer");
        using var checkpoint = SafetensorsCheckpoint.Open(transformerFolder, "diffusion_pytorch_model");
        var catalog = LoraTargetCatalog.FromCheckpoint(checkpoint);
        using var g = new Generator(seed);
        var modules = new List<KeyValuePair<string, LoraModule>>();
        foreach (var (name, (outFeatures, inFeatures)) in catalog.Linears.Where(l => l.Key.Contains(".attn")).OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            var down = randn(new long[] { rank, inFeatures }, generator: g) / Math.Sqrt(inFeatures);
            var up = randn(new long[] { outFeatures, rank }, generator: g) * (strength / Math.Sqrt(rank));
            modules.Add(new(name, new LoraModule(down, up, rank)));
        }
        using var weights = new LoraWeights(modules);
        LoraFile.Write(path, weights, metadata);
        return path;
    }

    /// <summary>A transformer folder like the tiny one but twice as wide: LoRAs made for it fit nothing in the tiny model.</summary>
    public static string WriteWideTransformer(string folder)
    {
        var config = TinyModels.Variant.TransformerConfig with { AttentionHeadDim = 32 };
        using var model = new PixArtTransformer2DModel(config);
        model.SavePretrained(folder);
        return folder;
    }

    /// <summary>Runs the built <c>lora</c> executable offline, with the tests' tiny-model cache.</summary>
    public static LoraProcess.Result RunLora(params string[] args) => LoraProcess.Run(TimeSpan.FromMinutes(3), args, environment: new Dictionary<string, string?>
    {
        [TinyModels.HomeVariable] = Path.GetDirectoryName(ModelsRoot)!,
        ["HF_HUB_OFFLINE"] = "1",
    });

    /// <summary>The pixels of a PNG file.</summary>
    public static Image<Rgb24> LoadPng(string path) => Image.Load<Rgb24>(path);

    /// <summary>Largest per-channel difference between two images of one size.</summary>
    public static int MaxPixelDifference(string a, string b)
    {
        using var x = LoadPng(a);
        using var y = LoadPng(b);
        Assert.Equal((x.Width, x.Height), (y.Width, y.Height));
        int max = 0;
        for (int row = 0; row < x.Height; row++)
            for (int col = 0; col < x.Width; col++)
            {
                var p = x[col, row];
                var q = y[col, row];
                max = Math.Max(max, Math.Max(Math.Abs(p.R - q.R), Math.Max(Math.Abs(p.G - q.G), Math.Abs(p.B - q.B))));
            }
        return max;
    }
}
