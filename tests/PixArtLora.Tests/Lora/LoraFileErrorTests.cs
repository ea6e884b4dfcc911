using PixArtLora.IO;
using PixArtLora.Lora;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

public class LoraFileErrorTests
{
    static LoraTargetCatalog Catalog(long dim = 8)
    {
        using var model = new TinyPixArtLikeModel(dim: dim);
        return LoraTargetCatalog.FromModule(model, $"tiny model (width {dim})");
    }

    static string Save(string label, Dictionary<string, Tensor> tensors)
    {
        string path = Path.Combine(TestPaths.NewTempDir(label), label + ".safetensors");
        SafetensorsWriter.Save(path, tensors);
        return path;
    }

    [Fact]
    public void A_lora_for_another_architecture_lists_its_keys_and_the_expected_model()
    {
        using var scope = NewDisposeScope();
        string path = Save("llm", new()
        {
            ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = randn(4, 8),
            ["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = randn(8, 4),
        });
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains(path, e.Message);
        Assert.Contains("none of its 1 modules match", e.Message);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", e.Message);
        Assert.Contains("tiny model (width 8)", e.Message);
        Assert.Contains("transformer_blocks.0.attn1.to_q", e.Message);
    }

    [Fact]
    public void An_adapter_for_another_width_fails_with_found_and_expected_shapes()
    {
        using var scope = NewDisposeScope();
        string path = Save("wide", new()
        {
            ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(4, 12),
            ["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"] = randn(12, 4),
        });
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains("A [4, 12], B [12, 4]", e.Message);
        Assert.Contains("expected A [r, 8] and B [8, r]", e.Message);
        Assert.Contains("tiny model (width 8)", e.Message);
    }

    [Fact]
    public void Partly_matching_files_fail_unless_not_strict()
    {
        using var scope = NewDisposeScope();
        string path = Save("partial", new()
        {
            ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(4, 8),
            ["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"] = randn(8, 4),
            ["transformer.transformer_blocks.7.attn1.to_q.lora_A.weight"] = randn(4, 8),
            ["transformer.transformer_blocks.7.attn1.to_q.lora_B.weight"] = randn(8, 4),
        });
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains("transformer.transformer_blocks.7.attn1.to_q.lora_A.weight", e.Message);

        using var w = LoraFile.Read(path, Catalog(), strict: false);
        Assert.Equal(new[] { "transformer_blocks.0.attn1.to_q" }, w.Modules.Keys);
        Assert.Contains(w.Warnings, x => x.Contains("transformer_blocks.7"));
    }

    [Theory]
    [InlineData("transformer.transformer_blocks.0.attn1.to_q.lora_magnitude_vector", "DoRA")]
    [InlineData("lora_unet_blocks_0_attn_qkv.hada_w1_a", "LoHa")]
    [InlineData("lora_unet_blocks_0_attn_qkv.lokr_w1", "LoKr")]
    public void Other_adapter_kinds_are_refused_by_name(string key, string kind)
    {
        using var scope = NewDisposeScope();
        string path = Save("kind", new()
        {
            ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(4, 8),
            ["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"] = randn(8, 4),
            [key] = randn(8),
        });
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains(kind, e.Message);
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void A_factor_without_its_partner_is_an_error()
    {
        using var scope = NewDisposeScope();
        string path = Save("half", new() { ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(4, 8) });
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains("lack their A (down) or B (up)", e.Message);
        Assert.Contains("transformer.transformer_blocks.0.attn1.to_q", e.Message);
    }

    [Fact]
    public void A_model_checkpoint_is_not_a_lora()
    {
        using var scope = NewDisposeScope();
        string path = Save("base", new() { ["transformer_blocks.0.attn1.to_q.weight"] = randn(8, 8), ["proj_out.bias"] = randn(5) });
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains("no LoRA tensors found", e.Message);
        Assert.Contains("proj_out.bias", e.Message);
    }

    [Fact]
    public void A_peft_folder_with_only_a_pickle_is_refused()
    {
        string dir = TestPaths.NewTempDir("peft-bin");
        File.WriteAllBytes(Path.Combine(dir, "adapter_model.bin"), new byte[] { 0x80, 0x02 });
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 4}");
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(dir, Catalog()));
        Assert.Contains("adapter_model.bin", e.Message);
    }

    [Fact]
    public void A_dora_config_is_refused()
    {
        using var scope = NewDisposeScope();
        string path = Save("dora-config", new()
        {
            ["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"] = randn(4, 8),
            ["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"] = randn(8, 4),
        });
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(path)!, "adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 4, \"use_dora\": true}");
        var e = Assert.Throws<LoraFormatException>(() => LoraFile.Read(path, Catalog()));
        Assert.Contains("use_dora", e.Message);
    }
}
