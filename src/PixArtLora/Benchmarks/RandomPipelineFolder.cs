using System.Text.Json.Nodes;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Registry;

namespace PixArtLora.Benchmarks;

/// <summary>
/// Writes a diffusers pipeline folder of a released variant with seeded random weights, so that <c>lora train</c>,
/// <c>lora infer</c> and <c>lora cache</c> can be measured at full size with nothing downloaded. The transformer and
/// the VAE have the variant's real shapes (Σ-512-MS: 2.4 GB and 0.33 GB in fp32). T5-XXL (19 GB in fp32) is replaced by
/// a stand-in with its output width — d_model = the transformer's caption_channels, 4096 — but one layer and a small
/// feed-forward, so that captions have the right shape while the text encoder costs little; time and memory of T5
/// itself are not represented. The tiny variant gets <see cref="TinyModels.WritePipeline"/>'s folder, real tiny T5 included.
/// </summary>
public static class RandomPipelineFolder
{
    /// <summary>The text_encoder/config.json of the stand-in T5 for <paramref name="variant"/>.</summary>
    public static JsonObject StandInTextEncoderConfig(ModelVariant variant)
    {
        var config = TinyModels.TextEncoderConfigJson();
        config["d_model"] = variant.TransformerConfig.CaptionChannels ?? T5Config.V11Xxl.DModel;
        config["num_layers"] = 1;
        config["num_decoder_layers"] = 1;
        return config;
    }

    /// <summary>Writes the pipeline into <paramref name="folder"/> (created; files of the same names are overwritten).</summary>
    public static void Write(string folder, ModelVariant variant, Action<string>? log = null)
    {
        if (variant.Id == TinyModels.VariantId)
        {
            TinyModels.WritePipeline(folder);
            return;
        }
        log?.Invoke($"writing {folder}: {variant.Id}'s transformer and VAE (fp32, seeded random weights), a one-layer stand-in for T5-XXL with its output width");
        string pipelineClass = variant.Family == PixArtFamily.Alpha ? "PixArtAlphaPipeline" : "PixArtSigmaPipeline";
        TinyModels.WritePipeline(folder, variant.TransformerConfig, RandomPipeline.VaeConfigFor(variant), StandInTextEncoderConfig(variant), pipelineClass);
    }
}
