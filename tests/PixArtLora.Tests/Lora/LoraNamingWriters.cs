using System.Text.Json;
using PixArtLora.IO;
using PixArtLora.Lora;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

/// <summary>
/// Writes an adapter (diffusers module names) in the key namings other tools produce, spelled out here key by key
/// rather than through the library, so that reading them tests the reader against the formats, not against itself.
/// Returns the path to hand to <see cref="LoraFile.Read"/>.
/// </summary>
static class LoraNamingWriters
{
    public static readonly string[] Namings =
    {
        "ours", "ours-peft-folder", "peft-save-pretrained", "official-script-unet-prefix", "lora-down-up-diffusion-model",
        "onetrainer", "original-pixart-stacked", "original-pixart-shared-A", "original-pixart-underscore",
    };

    public static string Write(string naming, LoraWeights w, string dir) => naming switch
    {
        "ours" => Ours(w, Path.Combine(dir, "ours.safetensors")),
        "ours-peft-folder" => OursPeft(w, Path.Combine(dir, "peft")),
        // PEFT's save_pretrained: adapter_model.safetensors keyed base_model.model.<module>.lora_A.weight, alpha only in the config.
        "peft-save-pretrained" => Folder(dir, "adapter", "adapter_model.safetensors",
            Keys(w, m => $"base_model.model.{m}", ".lora_A.weight", ".lora_B.weight", alphaSuffix: null), w),
        // train_pixart_lora_hf.py: PEFT names through StableDiffusionPipeline.save_lora_weights → unet.base_model.model.…,
        // with adapter_config.json (transformer_.save_pretrained) in the same folder.
        "official-script-unet-prefix" => Folder(dir, "ckpt", "pytorch_lora_weights.safetensors",
            Keys(w, m => $"unet.base_model.model.{m}", ".lora_A.weight", ".lora_B.weight", alphaSuffix: null), w),
        "lora-down-up-diffusion-model" => File1(dir, "kohya.safetensors",
            Keys(w, m => $"diffusion_model.{m}", ".lora_down.weight", ".lora_up.weight", ".alpha")),
        // OneTrainer: lora_transformer_ + module with '_' for '.', plus T5 keys a PixArt LoRA must ignore.
        "onetrainer" => File1(dir, "onetrainer.safetensors",
            Keys(w, m => "lora_transformer_" + m.Replace('.', '_'), ".lora_down.weight", ".lora_up.weight", ".alpha")
                .Append(("lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight", ones(2, 4)))
                .Append(("lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_up.weight", ones(4, 2)))),
        "original-pixart-stacked" => File1(dir, "orig.safetensors", Original(w, sharedA: false, sep: '.', prefix: "")),
        "original-pixart-shared-A" => File1(dir, "orig-shared.safetensors", Original(w, sharedA: true, sep: '.', prefix: "")),
        "original-pixart-underscore" => File1(dir, "orig-kohya.safetensors", Original(w, sharedA: false, sep: '_', prefix: "lora_unet_")),
        _ => throw new ArgumentException(naming),
    };

    /// <summary>Namings that need q/k/v (and k/v) of each attention to share one A.</summary>
    public static bool NeedsSharedA(string naming) => naming == "original-pixart-shared-A";

    static string Ours(LoraWeights w, string path) { LoraFile.Write(path, w); return path; }

    static string OursPeft(LoraWeights w, string path) { LoraFile.WritePeftFolder(path, w); return path; }

    static IEnumerable<(string, Tensor)> Keys(LoraWeights w, Func<string, string> module, string down, string up, string? alphaSuffix)
    {
        foreach (var (name, m) in w.Modules)
        {
            yield return (module(name) + down, m.Down);
            yield return (module(name) + up, m.Up);
            if (alphaSuffix != null) yield return (module(name) + alphaSuffix, tensor((float)m.Alpha));
        }
    }

    static string File1(string dir, string name, IEnumerable<(string, Tensor)> tensors)
    {
        string path = Path.Combine(dir, name);
        SafetensorsWriter.Save(path, tensors.Select(t => new KeyValuePair<string, Tensor>(t.Item1, t.Item2)).ToList());
        return path;
    }

    static string Folder(string dir, string folder, string file, IEnumerable<(string, Tensor)> tensors, LoraWeights w)
    {
        string path = Path.Combine(dir, folder);
        Directory.CreateDirectory(path);
        string weights = File1(path, file, tensors);
        var config = new { r = w.UniformRank, lora_alpha = w.UniformAlpha, peft_type = "LORA", target_modules = new[] { "to_q", "to_k" } };
        File.WriteAllText(Path.Combine(path, "adapter_config.json"), JsonSerializer.Serialize(config));
        return file == "adapter_model.safetensors" ? path : weights;
    }

    /// <summary>
    /// Original PixArt names. Fused layers: either each part's A and B stacked along rows (A [3r, in], B [3·out, r]; what
    /// ComfyUI_ExtraModels builds from a diffusers adapter) or, when the parts share one A, a true LoRA of the fused weight
    /// (A [r, in], B [3·out, r]).
    /// </summary>
    static IEnumerable<(string, Tensor)> Original(LoraWeights w, bool sharedA, char sep, string prefix)
    {
        string N(string dotted) => prefix + (sep == '.' ? dotted : dotted.Replace('.', sep));
        var single = new Dictionary<string, string>
        {
            ["adaln_single.linear"] = "t_block.1",
            ["adaln_single.emb.timestep_embedder.linear_1"] = "t_embedder.mlp.0",
            ["adaln_single.emb.timestep_embedder.linear_2"] = "t_embedder.mlp.2",
            ["caption_projection.linear_1"] = "y_embedder.y_proj.fc1",
            ["caption_projection.linear_2"] = "y_embedder.y_proj.fc2",
            ["proj_out"] = "final_layer.linear",
        };
        var blocks = w.Modules.Keys.Where(k => k.StartsWith("transformer_blocks.")).Select(k => int.Parse(k.Split('.')[1])).Distinct();
        foreach (var n in blocks)
        {
            string b = $"transformer_blocks.{n}.";
            foreach (var (orig, parts) in new[]
                     {
                         ($"blocks.{n}.attn.qkv", new[] { "attn1.to_q", "attn1.to_k", "attn1.to_v" }),
                         ($"blocks.{n}.attn.proj", new[] { "attn1.to_out.0" }),
                         ($"blocks.{n}.cross_attn.q_linear", new[] { "attn2.to_q" }),
                         ($"blocks.{n}.cross_attn.kv_linear", new[] { "attn2.to_k", "attn2.to_v" }),
                         ($"blocks.{n}.cross_attn.proj", new[] { "attn2.to_out.0" }),
                         ($"blocks.{n}.mlp.fc1", new[] { "ff.net.0.proj" }),
                         ($"blocks.{n}.mlp.fc2", new[] { "ff.net.2" }),
                     })
            {
                var mods = parts.Select(p => w.Modules.TryGetValue(b + p, out var m) ? m : null).ToList();
                if (mods.All(m => m == null)) continue;
                if (mods.Any(m => m == null)) throw new InvalidOperationException($"{orig}: the writer needs all of {string.Join(", ", parts)}");
                var down = sharedA ? mods[0]!.Down : cat(mods.Select(m => m!.Down).ToList(), 0);
                yield return (N(orig) + ".lora_down.weight", down);
                yield return (N(orig) + ".lora_up.weight", cat(mods.Select(m => m!.Up).ToList(), 0));
                yield return (N(orig) + ".alpha", tensor((float)mods[0]!.Alpha));
            }
        }
        foreach (var (diff, orig) in single)
            if (w.Modules.TryGetValue(diff, out var m))
            {
                yield return (N(orig) + ".lora_down.weight", m.Down);
                yield return (N(orig) + ".lora_up.weight", m.Up);
                yield return (N(orig) + ".alpha", tensor((float)m.Alpha));
            }
    }
}
