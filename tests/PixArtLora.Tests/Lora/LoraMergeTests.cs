using System.Text.Json;
using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

public class LoraMergeTests
{
    /// <summary>Writes a module's state as a diffusers transformer folder (config.json + diffusion_pytorch_model*.safetensors).</summary>
    internal static string SaveCheckpoint(nn.Module model, string folder, ScalarType? dtype = null, long maxShardBytes = LoraMerge.DefaultMaxShardBytes)
    {
        Directory.CreateDirectory(folder);
        var sources = model.state_dict().Select(kv =>
        {
            var t = dtype is { } d ? kv.Value.detach().to(d) : kv.Value.detach();
            return TensorSource.Of(kv.Key, t);
        }).ToList();
        SafetensorsWriter.SaveSharded(folder, "diffusion_pytorch_model", sources, maxShardBytes);
        File.WriteAllText(Path.Combine(folder, "config.json"), "{\"_class_name\": \"TinyPixArtLikeModel\"}");
        return folder;
    }

    [Fact]
    public void Merging_the_reference_adapter_reproduces_the_reference_merged_weights()
    {
        string caseDir = TestPaths.Fixture("parity", "lora-sigma");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "case.json")));
        var tol = doc.RootElement.GetProperty("tolerance");
        double atol = tol.GetProperty("atol").GetDouble(), rtol = tol.GetProperty("rtol").GetDouble();
        string output = Path.Combine(TestPaths.NewTempDir("merge-ref"), "merged");

        var report = LoraMerge.MergeCheckpoint(Path.Combine(caseDir, doc.RootElement.GetProperty("base_model_dir").GetString()!),
            new[] { new LoraMergeSource(Path.Combine(caseDir, doc.RootElement.GetProperty("adapter_file").GetString()!)) }, output);

        Assert.Equal(16, report.WeightsChanged);
        using var merged = SafetensorsCheckpoint.Open(output);
        using var expected = SafetensorsCheckpoint.Open(Path.Combine(caseDir, doc.RootElement.GetProperty("merged_model_dir").GetString()!));
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), merged.Keys.Order(StringComparer.Ordinal));
        foreach (var key in expected.Keys)
        {
            using var e = expected.Read(key);
            using var a = merged.Read(key);
            Assert.Equal(e.dtype, a.dtype);
            TensorAssert.AllClose(a, e, atol, rtol, key);
        }
        Assert.Equal(File.ReadAllText(Path.Combine(caseDir, "transformer", "config.json")), File.ReadAllText(Path.Combine(output, "config.json")));
    }

    [Fact]
    public void Merged_checkpoint_runs_like_the_unmerged_adapter()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("merge-run");
        using var model = new TinyPixArtLikeModel();
        var inputs = model.Inputs();
        string baseDir = SaveCheckpoint(model, Path.Combine(dir, "base"));
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("a", new LoraConfig { Rank = 3, Alpha = 5, Targets = LoraTargets.AllLinear });
        LoraTestHelpers.RandomizeB(net, "a");
        net.SetStrength("a", 0.75);
        var unmerged = LoraTestHelpers.Run(model, inputs);
        using (var w = net.ExportAdapter("a")) LoraFile.Write(Path.Combine(dir, "a.safetensors"), w);

        LoraMerge.MergeCheckpoint(baseDir, new[] { LoraMergeSource.Parse(Path.Combine(dir, "a.safetensors") + ":0.75") }, Path.Combine(dir, "out"));

        using var fresh = new TinyPixArtLikeModel(seed: 99);
        using (var ckpt = SafetensorsCheckpoint.Open(Path.Combine(dir, "out"))) ckpt.LoadInto(fresh);
        TensorAssert.AllClose(LoraTestHelpers.Run(fresh, inputs), unmerged, 1e-5, 1e-5, "merged checkpoint vs unmerged adapter");
    }

    [Fact]
    public void Bf16_base_stays_bf16_with_the_update_computed_in_fp32()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("merge-bf16");
        using var model = new TinyPixArtLikeModel();
        string baseDir = SaveCheckpoint(model, Path.Combine(dir, "base"), bfloat16);
        var down = randn(2, 8);
        var up = randn(8, 2);
        using (var w = new LoraWeights(new Dictionary<string, LoraModule> { ["transformer_blocks.1.attn2.to_v"] = new(down.clone(), up.clone(), 1) }))
            LoraFile.Write(Path.Combine(dir, "a.safetensors"), w);

        LoraMerge.MergeCheckpoint(baseDir, new[] { new LoraMergeSource(Path.Combine(dir, "a.safetensors"), 0.5) }, Path.Combine(dir, "out"));

        using var baseCkpt = SafetensorsCheckpoint.Open(baseDir);
        using var outCkpt = SafetensorsCheckpoint.Open(Path.Combine(dir, "out"));
        foreach (var key in baseCkpt.Keys)
        {
            using var a = outCkpt.Read(key);
            using var b = baseCkpt.Read(key);
            Assert.Equal(ScalarType.BFloat16, a.dtype);
            if (key == "transformer_blocks.1.attn2.to_v.weight")
            {
                var expected = (b.to(float64) + 0.5 * 0.5 * up.to(float64).matmul(down.to(float64))).to(bfloat16);
                TensorAssert.AllClose(a, expected, 0, 1.0 / 128, key); // within one bf16 rounding step
                Assert.False(LoraTestHelpers.BitEqual(a, b));
            }
            else Assert.True(LoraTestHelpers.BitEqual(a, b), $"{key} changed");
        }
    }

    [Fact]
    public void Sharded_base_gives_sharded_output_with_an_index_and_two_adapters_add_up()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("merge-shards");
        using var model = new TinyPixArtLikeModel();
        string baseDir = SaveCheckpoint(model, Path.Combine(dir, "base"), maxShardBytes: 2048);
        Assert.True(File.Exists(Path.Combine(baseDir, "diffusion_pytorch_model.safetensors.index.json")));
        var (a1, b1, a2, b2) = (randn(2, 8), randn(8, 2), randn(3, 8), randn(8, 3));
        var m1 = new LoraModule(a1.clone(), b1.clone(), 4);
        var m2 = new LoraModule(a2.clone(), b2.clone(), 3);
        using (var w = new LoraWeights(new Dictionary<string, LoraModule> { ["transformer_blocks.0.attn1.to_q"] = m1 })) LoraFile.Write(Path.Combine(dir, "a.safetensors"), w);
        using (var w = new LoraWeights(new Dictionary<string, LoraModule> { ["transformer_blocks.0.attn1.to_q"] = m2 })) LoraFile.WritePeftFolder(Path.Combine(dir, "b"), w);

        var report = LoraMerge.MergeCheckpoint(Path.Combine(dir, "base"),
            new[] { LoraMergeSource.Parse(Path.Combine(dir, "a.safetensors") + ":0.5"), LoraMergeSource.Parse(Path.Combine(dir, "b") + ":-1") },
            Path.Combine(dir, "out"), maxShardBytes: 2048);

        Assert.Contains(report.Files, f => f.EndsWith("diffusion_pytorch_model.safetensors.index.json"));
        Assert.True(report.Files.Count(f => f.EndsWith(".safetensors")) > 1);
        using var outCkpt = SafetensorsCheckpoint.Open(Path.Combine(dir, "out"));
        using var baseCkpt = SafetensorsCheckpoint.Open(baseDir);
        Assert.Equal(baseCkpt.Keys.Order(StringComparer.Ordinal), outCkpt.Keys.Order(StringComparer.Ordinal));
        var w0 = baseCkpt.Read("transformer_blocks.0.attn1.to_q.weight");
        var expected = w0 + 0.5 * 2.0 * b1.matmul(a1) - 1.0 * 1.0 * b2.matmul(a2);
        TensorAssert.AllClose(outCkpt.Read("transformer_blocks.0.attn1.to_q.weight"), expected, 1e-6, 1e-6, "two adapters");
    }

    [Fact]
    public void A_failed_merge_leaves_no_output_behind()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("merge-fail");
        using var model = new TinyPixArtLikeModel();
        string baseDir = SaveCheckpoint(model, Path.Combine(dir, "base"));
        SafetensorsWriter.Save(Path.Combine(dir, "wide.safetensors"), new Dictionary<string, Tensor>
        {
            ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(2, 16),
            ["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"] = randn(16, 2),
        });
        string output = Path.Combine(dir, "out");
        var e = Assert.Throws<LoraFormatException>(() => LoraMerge.MergeCheckpoint(baseDir, new[] { new LoraMergeSource(Path.Combine(dir, "wide.safetensors")) }, output));
        Assert.Contains("expected A [r, 8]", e.Message);
        Assert.False(Directory.Exists(output));
        Assert.Equal(new[] { "base", "wide.safetensors" }, Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order());

        var same = Assert.Throws<ArgumentException>(() => LoraMerge.MergeCheckpoint(baseDir, new[] { new LoraMergeSource(Path.Combine(dir, "wide.safetensors")) }, baseDir));
        Assert.Contains("would replace the base model", same.Message);
    }

    [Theory]
    [InlineData("a.safetensors", "a.safetensors", 1.0)]
    [InlineData("a.safetensors:0.8", "a.safetensors", 0.8)]
    [InlineData("C:\\loras\\a.safetensors:-1.5", "C:\\loras\\a.safetensors", -1.5)]
    [InlineData("/x/y:z/a.safetensors", "/x/y:z/a.safetensors", 1.0)]
    public void Lora_specs_take_an_optional_strength(string spec, string path, double strength)
    {
        var s = LoraMergeSource.Parse(spec);
        Assert.Equal(path, s.Path);
        Assert.Equal(strength, s.Strength);
    }
}
