using System.CommandLine;
using System.Text.Json.Nodes;
using PixArtLora.Cli;
using PixArtLora.Cli.Verbs;
using PixArtLora.IO;
using PixArtLora.Models.Conversion;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Conversion;

/// <summary>Original ↔ diffusers conversion beyond the parity cases: round trips, wrong configs, odd keys, atomic output, the CLI.</summary>
public class CheckpointConverterTests
{
    static string Original(string caseName) => TestPaths.Fixture("parity", caseName, "original.pth");

    /// <summary>The transformer config for the fixtures' tiny model (depth 2, hidden 24 = 2 heads x 12, captions 16).</summary>
    static JsonObject TinyConfig(bool micro) => new()
    {
        ["_class_name"] = "PixArtTransformer2DModel",
        ["num_layers"] = 2, ["num_attention_heads"] = 2, ["attention_head_dim"] = 12,
        ["in_channels"] = 4, ["out_channels"] = 8, ["patch_size"] = 2, ["cross_attention_dim"] = 24,
        ["caption_channels"] = 16, ["sample_size"] = micro ? 128 : 64, ["interpolation_scale"] = micro ? 2 : 1,
        ["use_additional_conditions"] = micro, ["norm_type"] = "ada_norm_single",
    };

    [Theory]
    [InlineData("pth-to-diffusers", false)]
    [InlineData("pth-to-diffusers-micro", true)]
    public void DiffusersBackToOriginalNamesRestoresEveryKeptTensorExactly(string caseName, bool micro)
    {
        string dir = TestPaths.NewTempDir("convert");
        string transformer = Path.Combine(dir, "transformer");
        PixArtCheckpointConverter.ToDiffusers(Original(caseName), transformer, TinyConfig(micro));
        Assert.Equal(micro, JsonNode.Parse(File.ReadAllText(Path.Combine(transformer, "config.json")))!["use_additional_conditions"]!.GetValue<bool>());
        // The converted folder strict-loads into our transformer: every key and shape it expects, nothing else.
        using (var model = PixArtTransformer2DModel.FromPretrained(transformer)) Assert.Equal(2, model.Config.NumLayers);

        string back = Path.Combine(dir, "original.safetensors");
        var report = PixArtCheckpointConverter.ToOriginal(transformer, back);

        using var pth = PthFile.Open(Original(caseName));
        using var restored = SafetensorsFile.Open(back);
        var kept = pth.Names.Except(PixArtKeyMap.DroppedOriginalKeys.Keys).OrderBy(k => k).ToList();
        Assert.Equal(kept, restored.Entries.Keys.OrderBy(k => k));
        Assert.Equal(kept.Count, report.TensorCount);
        foreach (var name in kept)
        {
            using var expected = pth.Read(name);
            using var actual = restored.Read(name);
            TensorAssert.Equal(actual, expected, name);
        }
    }

    [Fact]
    public void AConfigThatDoesNotFitTheCheckpointIsRefusedWithTheFieldNamed()
    {
        string output = Path.Combine(TestPaths.NewTempDir("convert"), "transformer");
        var layers = TinyConfig(false);
        layers["num_layers"] = 28;
        var e = Assert.Throws<ConversionException>(() => PixArtCheckpointConverter.ToDiffusers(Original("pth-to-diffusers"), output, layers));
        Assert.Contains("num_layers is 28", e.Message);
        Assert.Contains("has 2 transformer blocks", e.Message);

        var heads = TinyConfig(false);
        heads["num_attention_heads"] = 16;
        Assert.Contains("hidden size 24", Assert.Throws<ConversionException>(() => PixArtCheckpointConverter.ToDiffusers(Original("pth-to-diffusers"), output, heads)).Message);

        // An α-1024-MS checkpoint (micro-conditions) with a Σ config, and the reverse; null lets diffusers' sample_size rule decide.
        Assert.Contains("resolution/aspect-ratio embedders",
            Assert.Throws<ConversionException>(() => PixArtCheckpointConverter.ToDiffusers(Original("pth-to-diffusers-micro"), output, TinyConfig(false))).Message);
        var nullMicro = TinyConfig(false);
        nullMicro["use_additional_conditions"] = null;
        nullMicro["sample_size"] = 128;
        Assert.Contains("effectively true",
            Assert.Throws<ConversionException>(() => PixArtCheckpointConverter.ToDiffusers(Original("pth-to-diffusers"), output, nullMicro)).Message);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void KvCompressionLayersAndMissingKeysAreNamed()
    {
        string dir = TestPaths.NewTempDir("convert");
        string originalNames = Path.Combine(dir, "original.safetensors");
        PixArtCheckpointConverter.ToDiffusers(Original("pth-to-diffusers"), Path.Combine(dir, "t"), TinyConfig(false));
        PixArtCheckpointConverter.ToOriginal(Path.Combine(dir, "t"), originalNames);

        using (var f = SafetensorsFile.Open(originalNames))
        {
            var all = f.Entries.Keys.ToDictionary(k => k, k => f.Read(k));
            var withSr = new Dictionary<string, Tensor>(all) { ["blocks.0.attn.sr.weight"] = zeros(24, 24, 2, 2) };
            SafetensorsWriter.Save(Path.Combine(dir, "kv.safetensors"), withSr);
            var without = all.Where(kv => kv.Key != "blocks.1.mlp.fc2.bias").ToDictionary(kv => kv.Key, kv => kv.Value);
            SafetensorsWriter.Save(Path.Combine(dir, "missing.safetensors"), without);
        }

        var kv = Assert.Throws<ConversionException>(() => PixArtCheckpointConverter.ToDiffusers(Path.Combine(dir, "kv.safetensors"), Path.Combine(dir, "o1"), TinyConfig(false)));
        Assert.Contains("blocks.0.attn.sr.weight", kv.Message);
        Assert.Contains("KV-compression", kv.Message);
        var missing = Assert.Throws<ConversionException>(() => PixArtCheckpointConverter.ToDiffusers(Path.Combine(dir, "missing.safetensors"), Path.Combine(dir, "o2"), TinyConfig(false)));
        Assert.Contains("blocks.1.mlp.fc2.bias", missing.Message);
    }

    [Fact]
    public void AFailureWhileWritingLeavesThePreviousOutputUntouched()
    {
        string dir = TestPaths.NewTempDir("convert");
        string output = Path.Combine(dir, "transformer");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "config.json"), "previous");

        // Every key present and well-shaped, but one storage's data is short: reading fails mid-write.
        using var reference = PthFile.Open(Original("pth-to-diffusers"));
        var b = new TorchZipBuilder().EmptyDict().Mark();
        int key = 0;
        foreach (var name in reference.Names)
        {
            using var t = reference.Read(name);
            var bytes = t.contiguous().bytes.ToArray();
            if (name == "t_block.1.weight") bytes = bytes[..16];
            b.Str(name).Tensor("FloatStorage", (key++).ToString(), bytes, (int)t.numel(), 0, t.shape, t.stride());
        }
        string broken = b.SetItems().Stop().Save(Path.Combine(dir, "broken.pth"));

        Assert.Throws<PthFormatException>(() => PixArtCheckpointConverter.ToDiffusers(broken, output, TinyConfig(false)));
        Assert.Equal("previous", File.ReadAllText(Path.Combine(output, "config.json")));
        Assert.Equal(new[] { "broken.pth", "transformer" }, Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).OrderBy(n => n));
    }

    [Fact]
    public void CliTakesTheConfigFromTheRegistryVariant()
    {
        string dir = TestPaths.NewTempDir("convert-variant");
        var root = new RootCommand { ConvertVerb.Create() };

        // A randomly initialised tiny transformer, written with original PixArt names, converts back to the same weights.
        var config = ModelRegistry.Get("tiny").TransformerConfig;
        using var model = new PixArtTransformer2DModel(config);
        model.SavePretrained(Path.Combine(dir, "reference"));
        PixArtCheckpointConverter.ToOriginal(Path.Combine(dir, "reference"), Path.Combine(dir, "tiny-original.safetensors"));

        Assert.Equal(0, CliRunner.Run(root, new[] { "convert", "--source", Path.Combine(dir, "tiny-original.safetensors"), "--variant", "tiny", "--output", Path.Combine(dir, "out") }));
        Assert.Equal(config, PixArtTransformerConfig.Load(Path.Combine(dir, "out", "config.json")) with { Extra = null });
        using var loaded = PixArtTransformer2DModel.FromPretrained(Path.Combine(dir, "out"));
        var expected = model.state_dict();
        foreach (var (name, tensor) in loaded.state_dict()) TensorAssert.Equal(tensor, expected[name], name);

        // The released Σ-1024 config does not fit the fixtures' 2-block model: refused, nothing written.
        Assert.Equal(1, CliRunner.Run(root, new[] { "convert", "--source", Original("pth-to-diffusers"), "--variant", "sigma-1024-ms", "--output", Path.Combine(dir, "sigma") }));
        Assert.False(Directory.Exists(Path.Combine(dir, "sigma")));
    }

    [Fact]
    public void CliConvertsToBFloat16DiffusersAndBack()
    {
        string dir = TestPaths.NewTempDir("convert-cli");
        string config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, TinyConfig(true).ToJsonString());
        var root = new RootCommand { ConvertVerb.Create() };

        int rc = CliRunner.Run(root, new[] { "convert", "--source", Original("pth-to-diffusers-micro"), "--config", config, "--output", Path.Combine(dir, "out"), "--dtype", "bf16" });
        Assert.Equal(0, rc);
        using (var st = SafetensorsFile.Open(Path.Combine(dir, "out", "diffusion_pytorch_model.safetensors")))
        {
            Assert.All(st.Entries.Values, e => Assert.Equal("BF16", e.Dtype));
            Assert.Contains("adaln_single.emb.aspect_ratio_embedder.linear_2.bias", st.Entries.Keys);
        }

        Assert.Equal(0, CliRunner.Run(root, new[] { "convert", "--to", "original", "--source", Path.Combine(dir, "out"), "--output", Path.Combine(dir, "orig.safetensors") }));
        using var back = SafetensorsFile.Open(Path.Combine(dir, "orig.safetensors"));
        using var pth = PthFile.Open(Original("pth-to-diffusers-micro"));
        using var expected = pth.Read("blocks.1.attn.qkv.weight").to(bfloat16);
        TensorAssert.Equal(back.Read("blocks.1.attn.qkv.weight"), expected, "qkv");

        Assert.Equal(1, CliRunner.Run(root, new[] { "convert", "--source", Original("pth-to-diffusers"), "--output", Path.Combine(dir, "x") }));
    }
}
