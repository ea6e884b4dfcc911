using PixArtLora.IO;
using PixArtLora.Models.Common;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

/// <summary>Full-size variants built on the meta device: diffusers' parameter names, shapes and counts, nothing allocated.</summary>
public class TransformerStructureTests
{
    static Dictionary<string, TensorInfo> Describe(string id) =>
        PixArtTransformer2DModel.DescribeParameters(ModelRegistry.Get(id).TransformerConfig).ToDictionary(t => t.Name);

    [Theory]
    [InlineData("sigma-1024-ms", 610_856_096L)]
    [InlineData("alpha-1024-ms", 611_349_152L)]
    [InlineData("sigma-256", 610_856_096L)]
    [InlineData("sigma-2k-ms", 610_856_096L)]
    public void ReleasedVariantsHaveTheReferenceParameterCount(string id, long expected)
    {
        Assert.Equal(expected, PixArtTransformer2DModel.CountParameters(ModelRegistry.Get(id).TransformerConfig));
    }

    [Theory]
    [InlineData("transformer_blocks.27.attn2.to_k.weight", "[1152, 1152]")]
    [InlineData("transformer_blocks.27.attn2.to_out.0.weight", "[1152, 1152]")]
    [InlineData("transformer_blocks.0.attn1.to_q.bias", "[1152]")]
    [InlineData("transformer_blocks.0.ff.net.0.proj.weight", "[4608, 1152]")]
    [InlineData("transformer_blocks.0.ff.net.2.weight", "[1152, 4608]")]
    [InlineData("transformer_blocks.13.scale_shift_table", "[6, 1152]")]
    [InlineData("caption_projection.linear_1.weight", "[1152, 4096]")]
    [InlineData("caption_projection.linear_2.weight", "[1152, 1152]")]
    [InlineData("pos_embed.proj.weight", "[1152, 4, 2, 2]")]
    [InlineData("adaln_single.emb.timestep_embedder.linear_1.weight", "[1152, 256]")]
    [InlineData("adaln_single.linear.weight", "[6912, 1152]")]
    [InlineData("scale_shift_table", "[2, 1152]")]
    [InlineData("proj_out.weight", "[32, 1152]")]
    public void SigmaKeysAndShapesAreDiffusers(string key, string shape)
    {
        var tensors = Describe("sigma-1024-ms");
        Assert.True(tensors.ContainsKey(key), $"missing {key}");
        Assert.Equal(shape, tensors[key].ShapeText);
        Assert.Equal("F32", tensors[key].Dtype);
    }

    [Fact]
    public void MicroConditionEmbeddersExistOnlyForAlphaMultiScale()
    {
        var alpha = Describe("alpha-1024-ms");
        Assert.Equal(new long[] { 384, 256 }, alpha["adaln_single.emb.resolution_embedder.linear_1.weight"].Shape);
        Assert.Equal(new long[] { 384, 384 }, alpha["adaln_single.emb.aspect_ratio_embedder.linear_2.weight"].Shape);
        foreach (var id in new[] { "sigma-1024-ms", "alpha-512", "alpha-256" })
            Assert.DoesNotContain(Describe(id).Keys, k => k.Contains("resolution_embedder") || k.Contains("aspect_ratio_embedder"));
        Assert.Equal(6, Describe("sigma-1024-ms").Keys.Count(k => k.StartsWith("adaln_single.")));
        Assert.Equal(14, alpha.Keys.Count(k => k.StartsWith("adaln_single.")));
    }

    [Fact]
    public void PositionTableIsNotAParameter()
    {
        // diffusers registers pos_embed.pos_embed as a non-persistent buffer: it must not be expected from checkpoints.
        Assert.DoesNotContain(Describe("sigma-1024-ms").Keys, k => k == "pos_embed.pos_embed");
    }

    [Fact]
    public void MetaDeviceBuildAllocatesNothing()
    {
        using var model = new PixArtTransformer2DModel(ModelRegistry.Get("sigma-2k-ms").TransformerConfig, META);
        Assert.All(model.parameters(), p => Assert.True(p.is_meta));
        Assert.Equal(28, model.transformer_blocks.Count);
    }

    [Theory]
    [InlineData("transformer-sigma")]
    [InlineData("transformer-alpha-ms")]
    public void ReferenceCheckpointsHaveExactlyTheKeysOfTheModelTheirConfigDescribes(string caseName)
    {
        string folder = TestPaths.Fixture("parity", caseName, "transformer");
        using var checkpoint = SafetensorsCheckpoint.Open(folder, "diffusion_pytorch_model");
        var expected = PixArtTransformer2DModel.DescribeParameters(PixArtTransformerConfig.Load(folder));
        Assert.Empty(TensorListing.Compare(expected, TensorListing.Of(checkpoint)));
    }
}
