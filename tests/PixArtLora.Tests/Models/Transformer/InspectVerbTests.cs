
namespace PixArtLora.Tests.Models.Transformer;

/// <summary>`lora inspect`, run as a user runs it.</summary>
public class InspectVerbTests
{
    [Fact]
    public void SigmaVariantListsDiffusersNamesShapesAndTotal()
    {
        var r = LoraProcess.Run("inspect", "sigma-1024-ms");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("transformer_blocks.27.attn2.to_k.weight [1152, 1152] F32", lines);
        Assert.Contains("caption_projection.linear_1.weight [1152, 4096] F32", lines);
        Assert.DoesNotContain(lines, l => l.Contains("resolution_embedder"));
        Assert.Contains("total: 610,856,096 parameters in 603 tensors", lines);
        Assert.Equal(603, lines.Count(l => !l.StartsWith('#') && !l.StartsWith("total:")));
    }

    [Fact]
    public void AlphaMultiScaleVariantHasTheMicroConditionEmbedders()
    {
        var r = LoraProcess.Run("inspect", "PixArt-alpha/PixArt-XL-2-1024-MS");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("adaln_single.emb.resolution_embedder.linear_1.weight [384, 256] F32", r.Stdout);
        Assert.Contains("adaln_single.emb.aspect_ratio_embedder.linear_2.bias [384] F32", r.Stdout);
        Assert.Contains("total: 611,349,152 parameters", r.Stdout);
    }

    [Fact]
    public void ModelFolderIsListedAndCheckedAgainstItsConfig()
    {
        var r = LoraProcess.Run("inspect", TestPaths.Fixture("parity", "pipeline-sigma"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("transformer_blocks.1.attn2.to_v.weight [16, 16] F32", r.Stdout);
        Assert.Contains("every tensor matches", r.Stdout);
    }

    [Fact]
    public void SafetensorsFileIsListed()
    {
        var file = TestPaths.Fixture("parity", "lora-sigma", "adapter", "adapter_model.safetensors");
        var r = LoraProcess.Run("inspect", file);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("transformer.transformer_blocks.0.attn1.to_q.lora_A.weight [4, 16]", r.Stdout);
        Assert.Contains("total:", r.Stdout);
    }

    [Fact]
    public void UnknownTargetFailsWithTheKnownIds()
    {
        var r = LoraProcess.Run("inspect", "sigma-4k");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error:", r.Stderr);
        Assert.Contains("sigma-1024-ms", r.Stderr);
        Assert.Equal("", r.Stdout.Trim());
    }
}
