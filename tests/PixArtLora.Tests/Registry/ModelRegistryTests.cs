using System.Text.Json;
using PixArtLora.Registry;

namespace PixArtLora.Tests.Registry;

/// <summary>The registry against the facts extracted from the official repository and diffusers (pixart_tables.json).</summary>
public class ModelRegistryTests
{
    static readonly JsonElement Tables = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("pixart_tables.json"))).RootElement;

    public static IEnumerable<object[]> ReleasedCheckpoints() =>
        Tables.GetProperty("checkpoints").EnumerateArray().Select(c => new object[] { c.GetProperty("name").GetString()! });

    [Fact]
    public void HoldsEveryReleasedVariantAndTheTinyOne()
    {
        Assert.Equal(
            new[] { "alpha-256", "alpha-512", "alpha-1024-ms", "sigma-256", "sigma-512-ms", "sigma-1024-ms", "sigma-2k-ms", "tiny" },
            ModelRegistry.All.Select(v => v.Id));
        Assert.Equal(Tables.GetProperty("checkpoints").GetArrayLength(), ModelRegistry.All.Count(v => !v.IsOffline));
    }

    [Theory]
    [MemberData(nameof(ReleasedCheckpoints))]
    public void MatchesTheReferenceFacts(string release)
    {
        var fact = Tables.GetProperty("checkpoints").EnumerateArray().Single(c => c.GetProperty("name").GetString() == release);
        var v = ModelRegistry.Get(release);
        var config = v.TransformerConfig;

        Assert.Equal(fact.GetProperty("family").GetString(), v.Family.ToString().ToLowerInvariant());
        Assert.Equal(fact.GetProperty("image_size").GetInt32(), v.ImageSize);
        Assert.Equal(fact.GetProperty("diffusers_sample_size").GetInt32(), config.SampleSize);
        Assert.Equal(fact.GetProperty("depth").GetInt32(), config.NumLayers);
        Assert.Equal(fact.GetProperty("hidden_size").GetInt32(), config.InnerDim);
        Assert.Equal(fact.GetProperty("num_heads").GetInt32(), config.NumAttentionHeads);
        Assert.Equal(fact.GetProperty("head_dim").GetInt32(), config.AttentionHeadDim);
        Assert.Equal(fact.GetProperty("patch_size").GetInt32(), config.PatchSize);
        Assert.Equal(fact.GetProperty("in_channels").GetInt32(), config.InChannels);
        Assert.Equal(fact.GetProperty("out_channels").GetInt32(), config.ResolvedOutChannels);
        Assert.Equal(fact.GetProperty("caption_channels").GetInt32(), config.CaptionChannels);
        Assert.Equal(fact.GetProperty("caption_max_tokens").GetInt32(), v.CaptionTokens);
        Assert.Equal(fact.GetProperty("vae_scale_factor").GetDouble(), v.Vae.ScalingFactor);
        Assert.Equal(fact.GetProperty("use_additional_conditions_diffusers").GetBoolean(), v.UsesMicroConditions);
        Assert.Equal(fact.GetProperty("multi_scale").GetBoolean(), v.MultiScale);
        // The weights were trained with the training config's pe_interpolation (the α-256 choice, see ModelRegistry.All).
        Assert.Equal(fact.GetProperty("pe_interpolation_training_config").GetDouble(), config.ResolvedInterpolationScale);
        if (fact.GetProperty("aspect_ratio_table").GetString() is { } table && table != "None")
            Assert.Equal(table, v.TrainingAspectRatios.Name);
        Assert.Equal(v.ImageSize, v.TrainingAspectRatios.BaseResolution);
        Assert.Equal(v.ImageSize, v.InferenceAspectRatios.BaseResolution);
    }

    [Fact]
    public void SamplingDefaultsFollowTheOfficialScriptAndDiffusers()
    {
        var pipelines = Tables.GetProperty("pipelines");
        var official = pipelines.GetProperty("official_inference");
        foreach (var v in ModelRegistry.All)
        {
            Assert.Equal(official.GetProperty("sampling_algo_default").GetString(), v.Sampling.Sampler);
            Assert.Equal(official.GetProperty("cfg_scale_default").GetDouble(), v.Sampling.GuidanceScale);
            foreach (var steps in official.GetProperty("sample_steps_default").EnumerateObject())
                Assert.Equal(steps.Value.GetInt32(), v.Sampling.StepsFor(steps.Name));
            if (v.IsOffline) continue;
            var diffusers = pipelines.GetProperty(v.Family == PixArtFamily.Alpha
                ? "diffusers_PixArtAlphaPipeline_call_defaults" : "diffusers_PixArtSigmaPipeline_call_defaults");
            Assert.Equal(diffusers.GetProperty("num_inference_steps").GetInt32(), v.Sampling.Steps);
            Assert.Equal(diffusers.GetProperty("max_sequence_length").GetInt32(), v.CaptionTokens);
        }
    }

    [Fact]
    public void SigmaSharesOneComponentsRepositoryAndAlphaUsesItsOwn()
    {
        foreach (var v in ModelRegistry.All.Where(v => !v.IsOffline))
        {
            string expected = v.Family == PixArtFamily.Sigma ? "PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers" : v.Transformer!.Repo;
            Assert.Equal(expected, v.TextEncoder!.Repo);
            Assert.Equal(expected, v.Tokenizer!.Repo);
            Assert.Equal(expected, v.Vae.Source!.Repo);
            Assert.Equal(("transformer", "text_encoder", "tokenizer", "vae"),
                (v.Transformer!.Subfolder, v.TextEncoder.Subfolder, v.Tokenizer.Subfolder, v.Vae.Source.Subfolder));
            Assert.Equal("PixArt-alpha/" + v.Name, v.Transformer.Repo);
            Assert.EndsWith("/" + v.Name + ".pth", v.OriginalCheckpoint!.Url);
        }
    }

    [Theory]
    [InlineData("sigma-1024-ms", "sigma-1024-ms")]
    [InlineData("SIGMA-1024-MS", "sigma-1024-ms")]
    [InlineData("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", "sigma-1024-ms")]
    [InlineData("pixart-alpha/pixart-xl-2-1024-ms", "alpha-1024-ms")]
    [InlineData("PixArt-XL-2-512x512", "alpha-512")]
    [InlineData("Tiny", "tiny")]
    public void LooksUpByIdReleaseOrRepoIgnoringCase(string query, string expectedId)
    {
        Assert.Equal(expectedId, ModelRegistry.Get(query).Id);
        Assert.True(ModelRegistry.TryGet(query, out var v));
        Assert.Equal(expectedId, v.Id);
    }

    [Fact]
    public void UnknownVariantErrorListsTheKnownIds()
    {
        Assert.Null(ModelRegistry.Find("sigma-4k"));
        Assert.False(ModelRegistry.TryGet("sigma-4k", out _));
        var e = Assert.Throws<KeyNotFoundException>(() => ModelRegistry.Get("sigma-4k"));
        Assert.Contains("sigma-4k", e.Message);
        Assert.Contains("sigma-1024-ms", e.Message);
        Assert.Contains("tiny", e.Message);
    }

    [Fact]
    public void TinyVariantIsOfflineAndSmall()
    {
        var tiny = ModelRegistry.Get("tiny");
        Assert.True(tiny.IsOffline);
        Assert.Empty(tiny.HubRepos);
        Assert.Equal(tiny.TransformerConfig.CaptionChannels, tiny.TransformerConfig.CrossAttentionDim);
        Assert.True(global::PixArtLora.Models.Transformer.PixArtTransformer2DModel.CountParameters(tiny.TransformerConfig) < 1_000_000);
    }
}
