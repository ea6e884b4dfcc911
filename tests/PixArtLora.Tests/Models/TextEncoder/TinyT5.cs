using System.Text.Json.Nodes;
using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.TextEncoder;

/// <summary>Writes small T5 v1.1-style text_encoder/ folders with random non-zero weights, as save_pretrained lays them out.</summary>
public static class TinyT5
{
    public const int VocabSize = 32128; // the real vocabulary, so that the real tokenizer's ids fit

    public static JsonObject Config(int dModel = 8, int dKv = 4, int heads = 2, int dFf = 16, int layers = 2) => new()
    {
        ["architectures"] = new JsonArray("T5EncoderModel"),
        ["d_ff"] = dFf, ["d_kv"] = dKv, ["d_model"] = dModel, ["dense_act_fn"] = "gelu_new",
        ["eos_token_id"] = 1, ["feed_forward_proj"] = "gated-gelu", ["is_gated_act"] = true,
        ["layer_norm_epsilon"] = 1e-6, ["model_type"] = "t5", ["num_heads"] = heads, ["num_layers"] = layers,
        ["pad_token_id"] = 0, ["relative_attention_max_distance"] = 16, ["relative_attention_num_buckets"] = 8,
        ["torch_dtype"] = "float32", ["vocab_size"] = VocabSize,
    };

    /// <summary>Hugging Face key → random weight for <paramref name="config"/>.</summary>
    public static Dictionary<string, Tensor> Weights(JsonObject config, long seed, ScalarType dtype = ScalarType.Float32)
    {
        int d = (int)config["d_model"]!, inner = (int)config["num_heads"]! * (int)config["d_kv"]!, ff = (int)config["d_ff"]!;
        var g = new TorchSharp.torch.Generator((ulong)seed);
        Tensor R(params long[] shape) => (randn(shape, generator: g) * 0.5).to(dtype);
        Tensor Norm(long n) => (1.0 + 0.1 * randn(new[] { n }, generator: g)).to(dtype);
        var w = new Dictionary<string, Tensor> { ["shared.weight"] = R((int)config["vocab_size"]!, d), ["encoder.final_layer_norm.weight"] = Norm(d) };
        for (int i = 0; i < (int)config["num_layers"]!; i++)
        {
            string a = $"encoder.block.{i}.layer.0.", f = $"encoder.block.{i}.layer.1.";
            foreach (var p in new[] { "q", "k", "v" }) w[$"{a}SelfAttention.{p}.weight"] = R(inner, d);
            w[$"{a}SelfAttention.o.weight"] = R(d, inner);
            if (i == 0) w[$"{a}SelfAttention.relative_attention_bias.weight"] = R((int)config["relative_attention_num_buckets"]!, (int)config["num_heads"]!);
            w[$"{a}layer_norm.weight"] = Norm(d);
            w[$"{f}DenseReluDense.wi_0.weight"] = R(ff, d);
            w[$"{f}DenseReluDense.wi_1.weight"] = R(ff, d);
            w[$"{f}DenseReluDense.wo.weight"] = R(d, ff);
            w[$"{f}layer_norm.weight"] = Norm(d);
        }
        return w;
    }

    /// <summary>Writes config.json + model.safetensors (or shards of at most <paramref name="maxShardBytes"/>) into a new folder.</summary>
    public static string Write(string folder, JsonObject? config = null, long seed = 1, ScalarType dtype = ScalarType.Float32,
        long maxShardBytes = long.MaxValue, Action<Dictionary<string, Tensor>>? edit = null)
    {
        config ??= Config();
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        var weights = Weights(config, seed, dtype);
        edit?.Invoke(weights);
        SafetensorsWriter.SaveSharded(folder, "model", weights.Select(kv => TensorSource.Of(kv.Key, kv.Value)).ToList(), maxShardBytes);
        foreach (var t in weights.Values) t.Dispose();
        return folder;
    }

    public static string SpieceModel => TestPaths.Fixture("tokenizer", "t5", "spiece.model");
}
