using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

public class LoraFileTests
{
    public static IEnumerable<object[]> NamingCases() => LoraNamingWriters.Namings.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(NamingCases))]
    public void Write_then_read_gives_the_same_outputs(string naming)
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var inputs = model.Inputs();
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("a", new LoraConfig { Rank = 3, Alpha = 6, Targets = LoraTargets.AllLinear });
        LoraTestHelpers.RandomizeB(net, "a");
        if (LoraNamingWriters.NeedsSharedA(naming)) ShareA(net, "a");
        var expected = LoraTestHelpers.Run(model, inputs);
        Assert.True((expected - LoraTestHelpers.Run(new TinyPixArtLikeModel(), inputs)).abs().max().item<float>() > 1e-3, "the adapter must matter");

        using var exported = net.ExportAdapter("a");
        string path = LoraNamingWriters.Write(naming, exported, TestPaths.NewTempDir("lora-" + naming));

        using var fresh = new TinyPixArtLikeModel();
        using var net2 = LoraNetwork.Attach(fresh);
        using var read = LoraFile.Read(path, net2.Catalog());
        Assert.Equal(exported.Modules.Keys, read.Modules.Keys);
        Assert.All(read.Modules.Values, m => Assert.Equal(2.0, m.Scale, 6));
        Assert.All(read.Warnings, w => Assert.Contains("text-encoder", w));
        net2.LoadAdapter("b", read);
        TensorAssert.AllClose(LoraTestHelpers.Run(fresh, inputs), expected, 1e-5, 1e-5, naming);
    }

    /// <summary>q, k, v of self-attention (and k, v of cross-attention) get one A, so the fused original layer is a true LoRA.</summary>
    static void ShareA(LoraNetwork net, string adapter)
    {
        using var noGrad = no_grad();
        foreach (var (name, layer) in net.Layers)
        {
            string? source = name.EndsWith("attn1.to_k") || name.EndsWith("attn1.to_v") ? name[..^4] + "to_q"
                : name.EndsWith("attn2.to_v") ? name[..^4] + "to_k" : null;
            if (source != null) layer.Factors(adapter).A.weight.copy_(net.Layers[source].Factors(adapter).A.weight);
        }
    }

    [Fact]
    public void Written_file_has_the_comfyui_diffusers_layout_and_metadata()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("a", new LoraConfig { Rank = 2, Alpha = 4, UseRsLora = true });
        using var w = net.ExportAdapter("a", new Dictionary<string, string> { [LoraFile.MetadataBaseModel] = "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS" });
        string path = Path.Combine(TestPaths.NewTempDir("lora-layout"), "a.safetensors");
        LoraFile.Write(path, w, new Dictionary<string, string> { [LoraFile.MetadataTraining] = "{\"lr\":0.0001}" });

        using var st = SafetensorsFile.Open(path);
        var a = st.Get("transformer.transformer_blocks.0.attn1.to_q.lora_A.weight");
        var b = st.Get("transformer.transformer_blocks.0.attn1.to_q.lora_B.weight");
        var alpha = st.Get("transformer.transformer_blocks.0.attn1.to_q.alpha");
        Assert.Equal(new long[] { 2, 8 }, a.Shape);
        Assert.Equal(new long[] { 8, 2 }, b.Shape);
        Assert.Empty(alpha.Shape);
        // rsLoRA: alpha / √r is stored as an equivalent alpha·√r so that plain alpha / r loaders get the trained scale.
        using (var t = st.Read(alpha.Name)) Assert.Equal(4 * Math.Sqrt(2), t.item<float>(), 5);
        Assert.Equal(2 * 8 * 3, st.Entries.Count); // 8 attention layers × 2 blocks × (A, B, alpha)
        Assert.Equal("2", st.Metadata[LoraFile.MetadataRank]);
        Assert.Equal("4", st.Metadata[LoraFile.MetadataAlpha]);
        Assert.Equal("true", st.Metadata[LoraFile.MetadataRsLora]);
        Assert.Equal("attention", st.Metadata[LoraFile.MetadataTargets]);
        Assert.Equal("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", st.Metadata[LoraFile.MetadataBaseModel]);
        Assert.Equal("{\"lr\":0.0001}", st.Metadata[LoraFile.MetadataTraining]);
    }

    [Fact]
    public void Mixed_ranks_and_alphas_survive_both_writers()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var catalog = LoraTargetCatalog.FromModule(model);
        using var w = new LoraWeights(new Dictionary<string, LoraModule>
        {
            ["transformer_blocks.0.attn1.to_q"] = new(randn(2, 8), randn(8, 2), 4),
            ["transformer_blocks.0.attn1.to_v"] = new(randn(2, 8), randn(8, 2), 4),
            ["transformer_blocks.1.ff.net.2"] = new(randn(5, 16), randn(8, 5), 1.5),
        });
        string dir = TestPaths.NewTempDir("lora-mixed");
        LoraFile.Write(Path.Combine(dir, "a.safetensors"), w);
        LoraFile.WritePeftFolder(Path.Combine(dir, "peft"), w);
        foreach (var path in new[] { Path.Combine(dir, "a.safetensors"), Path.Combine(dir, "peft") })
        {
            using var r = LoraFile.Read(path, catalog);
            foreach (var (name, m) in w.Modules)
            {
                Assert.Equal(m.Alpha, r.Modules[name].Alpha);
                Assert.True(LoraTestHelpers.BitEqual(r.Modules[name].Down, m.Down), $"{path}: {name} A");
                Assert.True(LoraTestHelpers.BitEqual(r.Modules[name].Up, m.Up), $"{path}: {name} B");
            }
            Assert.Empty(r.Warnings);
        }
    }

    [Fact]
    public void Missing_alpha_comes_from_adapter_config_beside_the_file_else_equals_the_rank_with_a_warning()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var catalog = LoraTargetCatalog.FromModule(model);
        var tensors = new Dictionary<string, Tensor>
        {
            ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(4, 8),
            ["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"] = randn(8, 4),
            ["transformer.transformer_blocks.0.attn2.to_k.lora_A.weight"] = randn(4, 8),
            ["transformer.transformer_blocks.0.attn2.to_k.lora_B.weight"] = randn(8, 4),
        };
        string bare = Path.Combine(TestPaths.NewTempDir("lora-noalpha"), "a.safetensors");
        SafetensorsWriter.Save(bare, tensors);
        using (var r = LoraFile.Read(bare, catalog))
        {
            Assert.All(r.Modules.Values, m => Assert.Equal(4, m.Alpha));
            Assert.Contains(r.Warnings, w => w.Contains("assuming alpha = rank"));
        }

        string withConfig = Path.Combine(TestPaths.NewTempDir("lora-config"), "pytorch_lora_weights.safetensors");
        SafetensorsWriter.Save(withConfig, tensors);
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(withConfig)!, "adapter_config.json"),
            "{\"r\": 4, \"lora_alpha\": 8, \"use_rslora\": false, \"alpha_pattern\": {\"attn2.to_k\": 2}}");
        using (var r = LoraFile.Read(withConfig, catalog))
        {
            Assert.Equal(8, r.Modules["transformer_blocks.0.attn1.to_q"].Alpha);
            Assert.Equal(2, r.Modules["transformer_blocks.0.attn2.to_k"].Alpha);
            Assert.Empty(r.Warnings);
        }
    }

    [Fact]
    public void The_reference_peft_adapter_reads_with_alpha_from_its_config()
    {
        string caseDir = TestPaths.Fixture("parity", "lora-sigma");
        using var ckpt = SafetensorsCheckpoint.Open(Path.Combine(caseDir, "transformer"));
        var catalog = LoraTargetCatalog.FromCheckpoint(ckpt);
        foreach (var path in new[] { Path.Combine(caseDir, "adapter"), Path.Combine(caseDir, "adapter", "adapter_model.safetensors") })
        {
            using var w = LoraFile.Read(path, catalog);
            Assert.Equal(16, w.Modules.Count);
            Assert.Equal(4, w.UniformRank);
            Assert.Equal(8, w.UniformAlpha);
            Assert.Contains("transformer_blocks.1.attn2.to_out.0", w.Modules.Keys);
            Assert.Empty(w.Warnings);
        }
    }
}
