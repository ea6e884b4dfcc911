using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Models.Common;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using static TorchSharp.torch;

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
        Directory.CreateDirectory(folder);

        var transformer = Path.Combine(folder, "transformer");
        log?.Invoke($"writing {transformer} ({variant.Id}, fp32, seeded random weights)");
        Directory.CreateDirectory(transformer);
        TinyModels.SaveSeeded(Path.Combine(transformer, "diffusion_pytorch_model.safetensors"),
            PixArtTransformer2DModel.DescribeParameters(variant.TransformerConfig).Select(t => (t.Name, t.Shape)), "transformer");
        variant.TransformerConfig.Save(Path.Combine(transformer, "config.json"));

        var vae = Path.Combine(folder, "vae");
        log?.Invoke($"writing {vae}");
        Directory.CreateDirectory(vae);
        var vaeConfig = RandomPipeline.VaeConfigFor(variant);
        using (var meta = new AutoencoderKL(vaeConfig, META))
            TinyModels.SaveSeeded(Path.Combine(vae, AutoencoderKL.WeightsBaseName + ".safetensors"), TensorListing.Of(meta).Select(t => (t.Name, t.Shape)), "vae");
        vaeConfig.Save(Path.Combine(vae, "config.json"));

        var textEncoder = Path.Combine(folder, "text_encoder");
        log?.Invoke($"writing {textEncoder} (a one-layer stand-in for T5-XXL with its output width)");
        Directory.CreateDirectory(textEncoder);
        var t5Json = StandInTextEncoderConfig(variant);
        var t5 = T5Config.FromJson(t5Json.ToJsonString(), Path.Combine(textEncoder, "config.json"));
        using (var meta = T5EncoderModel.Create(t5, META))
            TinyModels.SaveSeeded(Path.Combine(textEncoder, "model.safetensors"), TensorListing.Of(meta).Select(t => (t.Name, t.Shape)), "text_encoder");
        AtomicFile.WriteAllText(Path.Combine(textEncoder, "config.json"), t5Json.ToJsonString());

        TinyModels.WriteTokenizer(Path.Combine(folder, "tokenizer"));
        TinyModels.WriteScheduler(Path.Combine(folder, "scheduler"));
        string pipelineClass = variant.Family == PixArtFamily.Alpha ? "PixArtAlphaPipeline" : "PixArtSigmaPipeline";
        AtomicFile.WriteAllText(Path.Combine(folder, "model_index.json"), TinyModels.ModelIndexJson(pipelineClass));
    }
}
