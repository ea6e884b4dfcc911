using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.TextEncoder;

public class T5EncoderModelTests
{
    static (Tensor Ids, Tensor Mask) Batch()
    {
        var ids = tensor(new long[] { 13, 8774, 296, 1712, 3155, 1, 0, 0, 9, 31000, 25, 1, 0, 0, 0, 0 }, new long[] { 2, 8 });
        var mask = ids.ne(0).to(int64);
        return (ids, mask);
    }

    [Fact]
    public void FullSizeXxlHasHuggingFaceKeysShapesAndParameterCount()
    {
        using var model = T5EncoderModel.Create(T5Config.V11Xxl, META, ScalarType.BFloat16);
        var state = model.state_dict();
        Assert.Equal(24 * 9 + 3, state.Count);
        Assert.Equal(4_762_310_656L, state.Values.Sum(t => t.numel()));
        Assert.Equal(new long[] { 32128, 4096 }, state["shared.weight"].shape);
        Assert.Equal(new long[] { 32, 64 }, state["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape);
        Assert.DoesNotContain("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight", state.Keys);
        Assert.Equal(new long[] { 10240, 4096 }, state["encoder.block.23.layer.1.DenseReluDense.wi_1.weight"].shape);
        Assert.Equal(new long[] { 4096, 10240 }, state["encoder.block.23.layer.1.DenseReluDense.wo.weight"].shape);
        Assert.Equal(new long[] { 4096 }, state["encoder.block.7.layer.0.layer_norm.weight"].shape);
        Assert.Equal(new long[] { 4096 }, state["encoder.final_layer_norm.weight"].shape);
        Assert.All(state.Values, t => Assert.Equal(DeviceType.META, t.device_type));
    }

    [Fact]
    public void InnerDimMayDifferFromModelWidth()
    {
        var cfg = TinyT5.Config(dModel: 8, dKv: 3, heads: 4);
        using var scope = NewDisposeScope();
        var dir = TinyT5.Write(TestPaths.NewTempDir("t5"), cfg);
        using var model = T5EncoderModel.Load(dir);
        Assert.Equal(new long[] { 12, 8 }, model.state_dict()["encoder.block.1.layer.0.SelfAttention.q.weight"].shape);
        var (ids, mask) = Batch();
        var h = model.forward(ids, mask);
        Assert.Equal(new long[] { 2, 8, 8 }, h.shape);
        Assert.False(h.isnan().any().item<bool>());
    }

    [Fact]
    public void ShardedFolderLoadsExactlyLikeOneFile()
    {
        using var scope = NewDisposeScope();
        var single = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 3);
        var sharded = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 3, maxShardBytes: 400_000);
        Assert.True(File.Exists(Path.Combine(sharded, "model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length >= 2);
        var (ids, mask) = Batch();
        using var a = T5EncoderModel.Load(single);
        using var b = T5EncoderModel.Load(sharded);
        TensorAssert.Equal(b.forward(ids, mask), a.forward(ids, mask), "sharded vs single");
    }

    [Fact]
    public void OlderFilesWithEmbedTokensAreAccepted()
    {
        using var scope = NewDisposeScope();
        var modern = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 4);
        var both = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 4, edit: w => w["encoder.embed_tokens.weight"] = w["shared.weight"].clone());
        var onlyOld = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 4, edit: w =>
        {
            w["encoder.embed_tokens.weight"] = w["shared.weight"];
            w.Remove("shared.weight");
        });
        var (ids, mask) = Batch();
        using var reference = T5EncoderModel.Load(modern);
        var expected = reference.forward(ids, mask);
        using (var m = T5EncoderModel.Load(both)) TensorAssert.Equal(m.forward(ids, mask), expected, "shared + embed_tokens");
        using (var m = T5EncoderModel.Load(onlyOld)) TensorAssert.Equal(m.forward(ids, mask), expected, "embed_tokens only");
    }

    [Fact]
    public void MissingShardNamesTheIndexTheShardAndAKey()
    {
        var dir = TinyT5.Write(TestPaths.NewTempDir("t5"), maxShardBytes: 400_000);
        var shard = Directory.GetFiles(dir, "model-*-of-*.safetensors").OrderBy(f => f).Last();
        File.Delete(shard);
        var ex = Assert.ThrowsAny<Exception>(() => T5EncoderModel.Load(dir));
        Assert.Contains("model.safetensors.index.json", ex.Message);
        Assert.Contains(Path.GetFileName(shard), ex.Message);
        Assert.Matches(@"'(shared|encoder\.)[^']*\.weight'", ex.Message);
    }

    [Fact]
    public void ShapesThatDisagreeWithConfigNameTheFileKeyAndConfig()
    {
        var dir = TinyT5.Write(TestPaths.NewTempDir("t5"), maxShardBytes: 400_000);
        var cfg = TinyT5.Config();
        cfg["d_ff"] = 24;
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
        var ex = Assert.Throws<SafetensorsFormatException>(() => T5EncoderModel.Load(dir));
        Assert.Contains("encoder.block.0.layer.1.DenseReluDense.wi_0.weight: shape [16, 8]", ex.Message);
        Assert.Contains("model-0000", ex.Message);
        Assert.Contains("config.json", ex.Message);
        Assert.Contains("[24, 8]", ex.Message);
    }

    [Fact]
    public void BFloat16RunsCloseToFloat32AndDefaultsToTheStoredDtype()
    {
        using var scope = NewDisposeScope();
        var fp32 = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 5);
        var bf16 = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 5, dtype: ScalarType.BFloat16);
        var (ids, mask) = Batch();
        using var exact = T5EncoderModel.Load(bf16, CPU, ScalarType.Float32); // bf16 weights, float32 compute
        using var stored = T5EncoderModel.Load(bf16);
        using var converted = T5EncoderModel.Load(fp32, CPU, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, stored.DType);
        var reference = exact.forward(ids, mask);
        var fast = stored.forward(ids, mask);
        Assert.Equal(ScalarType.BFloat16, fast.dtype);
        // T5's outputs are RMS-normed (about unit scale): bf16 keeps 2-3 significant digits.
        TensorAssert.AllClose(fast, reference, atol: 0.1, rtol: 0.05, "bf16 vs fp32");
        TensorAssert.Equal(converted.SharedWeight, stored.SharedWeight, "fp32 file read into bf16 = bf16 file");
    }

    [Fact]
    public void RealTokensDoNotDependOnHowMuchPaddingFollows()
    {
        using var scope = NewDisposeScope();
        using var model = T5EncoderModel.Load(TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 6));
        var (ids, mask) = Batch();
        var full = model.forward(ids, mask);
        var shortIds = ids[.., ..6];
        var shortMask = mask[.., ..6];
        var trimmed = model.forward(shortIds, shortMask);
        TensorAssert.AllClose(trimmed[0], full[0][..6], 1e-6, 1e-5, "row 0");
        TensorAssert.AllClose(trimmed[1][..4], full[1][..4], 1e-6, 1e-5, "row 1 real tokens");
        // Without a mask the padding is attended to, so the same row changes.
        var unmasked = model.forward(ids, null);
        Assert.True((unmasked[1][..4] - full[1][..4]).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void ConfigRoundTripsUnknownFieldsAndRejectsUnsupportedActivations()
    {
        var dir = TestPaths.NewTempDir("t5");
        var json = TinyT5.Config();
        json["some_future_field"] = new JsonArray(1, 2);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        var cfg = T5Config.Load(dir);
        Assert.Equal(8, cfg.InnerDim);
        Assert.True(cfg.IsGatedAct);
        Assert.Equal("gelu_new", cfg.ActivationName);
        Assert.Contains("some_future_field", cfg.ToJson());
        json["dense_act_fn"] = "mish";
        var ex = Assert.Throws<InvalidDataException>(() => T5Config.FromJson(json.ToJsonString(), "x/config.json"));
        Assert.Contains("x/config.json", ex.Message);
        Assert.Contains("mish", ex.Message);
    }
}
