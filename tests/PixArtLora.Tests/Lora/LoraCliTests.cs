using System.Diagnostics;
using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

/// <summary>The real <c>lora</c> executable, run as a user would, on the reference case's files.</summary>
public class LoraCliTests
{
    static (int Code, string Out, string Err) Lora(params string[] args)
    {
        var r = LoraProcess.Run(args);
        return (r.ExitCode, r.Stdout, r.Stderr);
    }

    static string Case(params string[] parts) => TestPaths.Fixture(new[] { "parity", "lora-sigma" }.Concat(parts).ToArray());

    [Fact]
    public void Merge_then_extract_round_trips_the_reference_adapter()
    {
        string dir = TestPaths.NewTempDir("cli-merge");
        string merged = Path.Combine(dir, "merged");
        var (code, stdout, stderr) = Lora("merge", "--base", Case(), "--lora", Case("adapter") + ":1", "--output", merged, "--verify");
        Assert.True(code == 0, stderr);
        Assert.Contains("merged 16 weights", stdout);
        var verify = System.Text.RegularExpressions.Regex.Match(stdout, @"max \|base\+LoRA − merged\| = (\S+) \(the LoRA changes the output by up to (\S+);");
        Assert.True(verify.Success, stdout);
        double diff = double.Parse(verify.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        double effect = double.Parse(verify.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(diff, 0, 1e-4);
        Assert.True(effect > 0.1, $"the reference adapter should matter: {effect}");

        using (var a = SafetensorsCheckpoint.Open(merged))
        using (var e = SafetensorsCheckpoint.Open(Case("merged", "transformer")))
        {
            using var actual = a.Read("transformer_blocks.1.attn2.to_v.weight");
            using var expected = e.Read("transformer_blocks.1.attn2.to_v.weight");
            TensorAssert.AllClose(actual, expected, 1e-4, 1e-4, "CLI merge");
        }

        string extracted = Path.Combine(dir, "x.safetensors");
        (code, stdout, stderr) = Lora("extract", "--base", Case(), "--tuned", merged, "--rank", "4", "--targets", "attention", "--output", extracted);
        Assert.True(code == 0, stderr);
        Assert.Contains("total retained energy 100.00 % over 16 modules", stdout);

        using var ckpt = SafetensorsCheckpoint.Open(Case("transformer"));
        using var x = LoraFile.Read(extracted, LoraTargetCatalog.FromCheckpoint(ckpt));
        using var reference = LoraFile.Read(Case("adapter"), LoraTargetCatalog.FromCheckpoint(ckpt));
        foreach (var (name, m) in reference.Modules)
            TensorAssert.AllClose(x.Modules[name].DeltaWeight(), m.DeltaWeight(), 1e-4, 1e-4, $"extracted {name}");
    }

    [Fact]
    public void A_lora_that_does_not_fit_exits_with_an_error_naming_its_keys()
    {
        string dir = TestPaths.NewTempDir("cli-bad");
        string lora = Path.Combine(dir, "wrong.safetensors");
        using (var scope = NewDisposeScope())
            SafetensorsWriter.Save(lora, new Dictionary<string, Tensor>
            {
                ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"] = randn(4, 320),
                ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"] = randn(320, 4),
            });
        var (code, _, stderr) = Lora("merge", "--base", Case(), "--lora", lora, "--output", Path.Combine(dir, "out"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", stderr);
        Assert.Contains("transformer_blocks.0.attn1.to_q", stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }
}
