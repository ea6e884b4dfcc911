using System.Text.Json.Serialization;
using PixArtLora.Configs;

namespace PixArtLora.Inference;

/// <summary>
/// Every setting of <c>lora infer</c> (the seed's spellings; --snake_case or --kebab-case; the same keys in
/// a YAML config given with -c, such as configs/inference/&lt;variant&gt;.yaml). Unset values come from the
/// registry entry of the model (sampler, steps, guidance, token length).
/// </summary>
public sealed class InferSettings
{
    [JsonPropertyName("model_id"), SettingAlias("pretrained_model_name_or_path", "model"), SettingHelp("registry variant, Hugging Face id or local diffusers folder")]
    public string Model { get; set; } = "sigma-512-ms";
    [JsonPropertyName("components_from"), SettingHelp("where text encoder, tokenizer, VAE and scheduler come from when model_id is a bare transformer folder (registry id, pipeline folder or Hugging Face id)")]
    public string? ComponentsFrom { get; set; }
    [JsonPropertyName("checkpoint"), SettingHelp("a full fine-tuned or merged transformer (folder or .safetensors) replacing the base one")]
    public string? Checkpoint { get; set; }
    [JsonPropertyName("lora_path"), SettingAlias("lora"), SettingHelp("LoRA file(s); a path may end with :scale")]
    public string[] LoraPath { get; set; } = Array.Empty<string>();
    [JsonPropertyName("lora_scale"), SettingHelp("scale for LoRAs given without :scale (0 = off)")]
    public double LoraScale { get; set; } = 1.0;

    [JsonPropertyName("prompt"), SettingHelp("prompt(s)")]
    public string[] Prompt { get; set; } = Array.Empty<string>();
    [JsonPropertyName("prompt_path"), SettingHelp("text file with one prompt per line")]
    public string? PromptPath { get; set; }
    [JsonPropertyName("negative_prompt"), SettingHelp("negative prompt (the pipelines' default is empty)")]
    public string NegativePrompt { get; set; } = "";
    [JsonPropertyName("num_inference_steps"), SettingAlias("steps", "step"), SettingHelp("sampler steps (registry default for the sampler)")]
    public int? NumInferenceSteps { get; set; }
    [JsonPropertyName("guidance_scale"), SettingAlias("cfg_scale"), SettingHelp("classifier-free guidance scale")]
    public double? GuidanceScale { get; set; }
    [JsonPropertyName("sampler"), SettingAlias("sampling_algo"), SettingHelp("dpm, ddim, ddpm, iddpm, euler or sa-solver")]
    public string? Sampler { get; set; }
    [JsonPropertyName("seed"), SettingHelp("random seed (image i of a batch uses seed + i)")]
    public long Seed { get; set; } = 0;
    [JsonPropertyName("image_width"), SettingAlias("width"), SettingHelp("width in pixels (default: the variant's resolution)")]
    public int? ImageWidth { get; set; }
    [JsonPropertyName("image_height"), SettingAlias("height"), SettingHelp("height in pixels (default: the variant's resolution)")]
    public int? ImageHeight { get; set; }
    [JsonPropertyName("use_resolution_binning"), SettingHelp("snap the size to the variant's aspect-ratio bins, resize back afterwards")]
    public bool UseResolutionBinning { get; set; } = true;
    [JsonPropertyName("batch_size"), SettingAlias("num_images_per_prompt"), SettingHelp("images per prompt")]
    public int BatchSize { get; set; } = 1;
    [JsonPropertyName("max_sequence_length"), SettingAlias("max_token_length"), SettingHelp("T5 token length (registry: 120 α, 300 Σ)")]
    public int? MaxSequenceLength { get; set; }

    [JsonPropertyName("output_path"), SettingAlias("output_dir"), SettingHelp("PNG path for a single image, or a folder for several")]
    public string OutputPath { get; set; } = "output/images";
    [JsonPropertyName("device"), SettingHelp("cpu, cuda or cuda:N")]
    public string Device { get; set; } = "cpu";
    [JsonPropertyName("dtype"), SettingHelp("fp32 or bf16 (fp16 only on CUDA)")]
    public string Dtype { get; set; } = "fp32";
    [JsonPropertyName("text_encoder_device"), SettingHelp("where T5 runs (default: --device); cpu keeps GPU memory for the transformer")]
    public string? TextEncoderDevice { get; set; }
    [JsonPropertyName("keep_text_encoder"), SettingHelp("keep T5 loaded after encoding (batch runs)")]
    public bool KeepTextEncoder { get; set; }
    [JsonPropertyName("vae_tiling"), SettingHelp("auto, on or off")]
    public string VaeTiling { get; set; } = "auto";
}
