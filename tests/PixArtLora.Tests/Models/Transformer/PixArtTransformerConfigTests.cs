using PixArtLora.Models.Transformer;
using PixArtLora.Registry;

namespace PixArtLora.Tests.Models.Transformer;

public class PixArtTransformerConfigTests
{
    // The transformer/config.json published with PixArt-alpha/PixArt-XL-2-1024-MS (written by diffusers 0.22, before
    // interpolation_scale and use_additional_conditions existed), trimmed to the keys that matter here.
    const string PublishedAlpha1024Ms = """
    {
      "_class_name": "Transformer2DModel", "_diffusers_version": "0.22.0.dev0",
      "activation_fn": "gelu-approximate", "attention_bias": true, "attention_head_dim": 72, "caption_channels": 4096,
      "cross_attention_dim": 1152, "double_self_attention": false, "dropout": 0.0, "in_channels": 4,
      "norm_elementwise_affine": false, "norm_eps": 1e-06, "norm_num_groups": 32, "norm_type": "ada_norm_single",
      "num_attention_heads": 16, "num_embeds_ada_norm": 1000, "num_layers": 28, "num_vector_embeds": null,
      "only_cross_attention": false, "out_channels": 8, "patch_size": 2, "sample_size": 128,
      "upcast_attention": false, "use_linear_projection": false
    }
    """;

    [Fact]
    public void NullFieldsResolveAsDiffusersDoes()
    {
        var config = PixArtTransformerConfig.Parse(PublishedAlpha1024Ms);
        Assert.Null(config.InterpolationScale);
        Assert.Null(config.UseAdditionalConditions);
        Assert.Equal(2, config.ResolvedInterpolationScale);          // max(128 // 64, 1)
        Assert.True(config.ResolvedUseAdditionalConditions);         // sample_size == 128
        Assert.Equal(1152, config.InnerDim);
        Assert.Equal(PixArtTransformer2DModel.CountParameters(ModelRegistry.Get("alpha-1024-ms").TransformerConfig),
            PixArtTransformer2DModel.CountParameters(config));
    }

    [Fact]
    public void UnknownKeysSurviveARoundTrip()
    {
        var config = PixArtTransformerConfig.Parse(PublishedAlpha1024Ms);
        var again = PixArtTransformerConfig.Parse(config.ToJson());
        Assert.True(again.Extra!.ContainsKey("use_linear_projection"));
        Assert.True(again.Extra!.ContainsKey("num_vector_embeds"));
        Assert.Equal(config with { Extra = null }, again with { Extra = null });
    }

    [Fact]
    public void ReadsTheReferenceFixtureConfig()
    {
        var config = PixArtTransformerConfig.Load(TestPaths.Fixture("parity", "transformer-sigma", "transformer"));
        Assert.Equal((2, 8, 16, 32, 8), (config.NumAttentionHeads, config.AttentionHeadDim, config.CrossAttentionDim!.Value, config.CaptionChannels!.Value, config.SampleSize));
        Assert.Equal(2, config.ResolvedInterpolationScale);
        Assert.False(config.ResolvedUseAdditionalConditions);
    }

    [Fact]
    public void SavedConfigIsReadBackIdentically()
    {
        var dir = TestPaths.NewTempDir("config");
        var preset = ModelRegistry.Get("sigma-256").TransformerConfig;
        preset.Save(Path.Combine(dir, "config.json"));
        var text = File.ReadAllText(Path.Combine(dir, "config.json"));
        Assert.Contains("\"interpolation_scale\": 0.5", text);
        Assert.Contains("\"_class_name\": \"PixArtTransformer2DModel\"", text);
        Assert.Equal(preset, PixArtTransformerConfig.Load(dir));
    }

    [Theory]
    [InlineData("\"norm_type\": \"ada_norm_single\"", "\"norm_type\": \"ada_norm_zero\"", "norm_type")]
    [InlineData("\"activation_fn\": \"gelu-approximate\"", "\"activation_fn\": \"geglu\"", "activation_fn")]
    [InlineData("\"only_cross_attention\": false", "\"only_cross_attention\": true", "only_cross_attention")]
    public void RejectsWhatPixArtDoesNotHaveNamingTheField(string from, string to, string field)
    {
        var e = Assert.Throws<InvalidDataException>(() => PixArtTransformerConfig.Parse(PublishedAlpha1024Ms.Replace(from, to), "my/config.json"));
        Assert.Contains("my/config.json", e.Message);
        Assert.Contains(field, e.Message);
    }
}
