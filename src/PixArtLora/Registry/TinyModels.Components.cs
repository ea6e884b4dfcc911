using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Models.Common;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Vae;
using static TorchSharp.torch;

namespace PixArtLora.Registry;

public static partial class TinyModels
{
    /// <summary>
    /// text_encoder/config.json: a T5 v1.1 encoder (gated-gelu, RMS norms, relative position buckets) with
    /// d_model 32, the width of the tiny transformer's captions, and T5's real 32128-entry vocabulary.
    /// </summary>
    public static JsonObject TextEncoderConfigJson() => new()
    {
        ["architectures"] = new JsonArray("T5EncoderModel"),
        ["d_ff"] = 64, ["d_kv"] = 16, ["d_model"] = Variant.TransformerConfig.CaptionChannels ?? 32,
        ["decoder_start_token_id"] = 0, ["dense_act_fn"] = "gelu_new", ["dropout_rate"] = 0.1, ["eos_token_id"] = 1,
        ["feed_forward_proj"] = "gated-gelu", ["initializer_factor"] = 1.0, ["is_encoder_decoder"] = true,
        ["is_gated_act"] = true, ["layer_norm_epsilon"] = 1e-6, ["model_type"] = "t5", ["num_decoder_layers"] = 2,
        ["num_heads"] = 2, ["num_layers"] = 2, ["pad_token_id"] = 0, ["relative_attention_max_distance"] = 128,
        ["relative_attention_num_buckets"] = 32, ["tie_word_embeddings"] = false, ["torch_dtype"] = "float32",
        ["vocab_size"] = 32128,
    };

    /// <summary>The tiny T5's config as the encoder reads it.</summary>
    public static T5Config TextEncoderConfig => T5Config.FromJson(TextEncoderConfigJson().ToJsonString(), "tiny text_encoder/config.json");

    /// <summary>
    /// text_encoder/: config.json (<paramref name="configJson"/>, default the tiny T5's) and model.safetensors with
    /// seeded weights (the layout transformers' save_pretrained writes).
    /// </summary>
    public static void WriteTextEncoder(string folder, JsonObject? configJson = null)
    {
        configJson ??= TextEncoderConfigJson();
        var config = T5Config.FromJson(configJson.ToJsonString(), Path.Combine(folder, "config.json"));
        Directory.CreateDirectory(folder);
        using (var meta = T5EncoderModel.Create(config, META))
            SaveSeeded(Path.Combine(folder, "model.safetensors"), TensorListing.Of(meta).Select(t => (t.Name, t.Shape)), "text_encoder");
        AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), configJson.ToJsonString(Indented));
    }

    /// <summary>
    /// vae/config.json: an AutoencoderKL with 4 blocks (8× downsampling) of 16 channels, 4 latent channels, and the
    /// registry's scaling factor for the tiny variant.
    /// </summary>
    public static AutoencoderKLConfig VaeConfig => new()
    {
        InChannels = 3, OutChannels = 3, LatentChannels = 4, LayersPerBlock = 1, NormNumGroups = 4,
        BlockOutChannels = new[] { 16, 16, 16, 16 },
        DownBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.DownBlockType, 4).ToArray(),
        UpBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.UpBlockType, 4).ToArray(),
        SampleSize = new[] { Variant.ImageSize }, ScalingFactor = Variant.Vae.ScalingFactor, ForceUpcast = true,
    };

    /// <summary>vae/: config.json (<paramref name="config"/>, default <see cref="VaeConfig"/>) and diffusion_pytorch_model.safetensors with seeded weights.</summary>
    public static void WriteVae(string folder, AutoencoderKLConfig? config = null)
    {
        config ??= VaeConfig;
        Directory.CreateDirectory(folder);
        using (var meta = new AutoencoderKL(config, META))
            SaveSeeded(Path.Combine(folder, AutoencoderKL.WeightsBaseName + ".safetensors"), TensorListing.Of(meta).Select(t => (t.Name, t.Shape)), "vae");
        config.Save(Path.Combine(folder, "config.json"));
    }
}
