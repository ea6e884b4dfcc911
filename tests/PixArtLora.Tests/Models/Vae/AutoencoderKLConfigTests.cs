using PixArtLora.Models.Vae;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Vae;

public class AutoencoderKLConfigTests
{
    [Fact]
    public void ReadsTheDiffusersConfigOfTheFixture()
    {
        var c = AutoencoderKLConfig.Load(VaeTestModels.FixtureFolder);
        Assert.Equal(new[] { 8, 16, 16, 16 }, c.BlockOutChannels);
        Assert.Equal(1, c.LayersPerBlock);
        Assert.Equal(4, c.LatentChannels);
        Assert.Equal(4, c.NormNumGroups);
        Assert.Equal(16, c.SampleSizePixels);
        Assert.Equal(0.13025, c.ScalingFactor);
        Assert.Null(c.ShiftFactor);
        Assert.True(c.ForceUpcast);
        Assert.True(c.UseQuantConv && c.UsePostQuantConv && c.MidBlockAddAttention);
        Assert.Equal(8, c.SpatialScaleFactor);
    }

    [Fact]
    public void MissingFieldsTakeDiffusersDefaultsAndSampleSizeMayBeAList()
    {
        var c = AutoencoderKLConfig.Parse("""{"_class_name": "AutoencoderKL", "sample_size": [512, 512], "block_out_channels": [32]}""");
        Assert.Equal(512, c.SampleSizePixels);
        Assert.Equal(0.18215, c.ScalingFactor);
        Assert.Equal(1, c.SpatialScaleFactor);
        Assert.True(c.UseQuantConv);
        Assert.Equal("silu", c.ActFn);
    }

    [Fact]
    public void SaveAndLoadRoundTrip()
    {
        var dir = TestPaths.NewTempDir("vae-config");
        var original = VaeTestModels.SdxlVae with { ShiftFactor = 0.0609, UsePostQuantConv = false, LatentsMean = new[] { 0.1, 0.2, 0.3, 0.4 } };
        original.Save(Path.Combine(dir, "config.json"));
        var back = AutoencoderKLConfig.Load(dir);
        Assert.Equal(original.BlockOutChannels, back.BlockOutChannels);
        Assert.Equal(original.SampleSize, back.SampleSize);
        Assert.Equal(original.LatentsMean, back.LatentsMean);
        Assert.Equal(0.0609, back.ShiftFactor);
        Assert.False(back.UsePostQuantConv);
        Assert.Contains("\"_class_name\": \"AutoencoderKL\"", File.ReadAllText(Path.Combine(dir, "config.json")));
    }

    [Theory]
    [InlineData("""{"block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 4}""", "down_block_types[1]")]
    [InlineData("""{"block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D"], "norm_num_groups": 4}""", "down_block_types")]
    [InlineData("""{"block_out_channels": [6], "norm_num_groups": 4}""", "block_out_channels[0]")]
    [InlineData("""{"block_out_channels": [8], "norm_num_groups": 4, "act_fn": "tanh"}""", "act_fn")]
    public void InvalidConfigsNameTheField(string json, string field)
    {
        var ex = Assert.Throws<InvalidDataException>(() => AutoencoderKLConfig.Parse(json, "vae/config.json"));
        Assert.Contains("vae/config.json", ex.Message);
        Assert.Contains(field, ex.Message);
    }

    [Fact]
    public void AnotherModelsConfigIsRejected()
    {
        var dir = TestPaths.NewTempDir("vae-config");
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"_class_name": "PixArtTransformer2DModel"}""");
        var ex = Assert.Throws<InvalidDataException>(() => AutoencoderKLConfig.Load(dir));
        Assert.Contains("PixArtTransformer2DModel", ex.Message);
    }

    [Fact]
    public void FullSizeSdxlVaeHasThePublishedParameterCountAndKeys()
    {
        // Built on the meta device: shapes only, no memory.
        using var vae = new AutoencoderKL(VaeTestModels.SdxlVae, new Device("meta"));
        var state = vae.state_dict();
        long count = state.Values.Sum(t => t.numel());
        Assert.Equal(83_653_863L, count); // AutoencoderKL (SD / SDXL VAE) in diffusers: 83,653,863 parameters
        Assert.Equal(new long[] { 512, 512 }, state["encoder.mid_block.attentions.0.to_out.0.weight"].shape);
        Assert.Equal(new long[] { 128, 128, 3, 3 }, state["encoder.down_blocks.0.downsamplers.0.conv.weight"].shape);
        Assert.Equal(new long[] { 128, 256, 1, 1 }, state["decoder.up_blocks.3.resnets.0.conv_shortcut.weight"].shape);
        Assert.Equal(new long[] { 8, 8, 1, 1 }, state["quant_conv.weight"].shape);
        Assert.False(state.ContainsKey("encoder.down_blocks.3.downsamplers.0.conv.weight"));
        Assert.False(state.ContainsKey("decoder.up_blocks.3.upsamplers.0.conv.weight"));
        // decoder blocks have layers_per_block + 1 resnets, encoder blocks layers_per_block
        Assert.True(state.ContainsKey("decoder.up_blocks.0.resnets.2.conv1.weight"));
        Assert.False(state.ContainsKey("encoder.down_blocks.0.resnets.2.conv1.weight"));
    }
}
