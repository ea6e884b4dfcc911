using PixArtLora.Models.TextEncoder;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.TextEncoder;

public class T5PromptEncoderTests
{
    static readonly string[] Prompts = { "A small cactus with a happy face", "", "a photo of an astronaut riding a horse on mars 🐱🚀" };

    [Fact]
    public void SkippingPaddingMatchesTheFullPaddedEncodingAtRealTokens()
    {
        using var scope = NewDisposeScope();
        var dir = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 7);
        using var fast = T5PromptEncoder.Load(dir, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = 120 });
        using var model = T5EncoderModel.Load(dir);
        var tokenizer = T5Tokenizer.Load(TinyT5.SpieceModel);
        var (ids, mask) = tokenizer.EncodeBatch(Prompts.Select(p => PythonText.Strip(PythonText.Lower(p))).ToList(), 120);
        var reference = model.forward(ids, mask); // what diffusers computes: all 120 positions

        var (emb, gotMask) = fast.Encode(Prompts);
        TensorAssert.Equal(gotMask, mask, "mask");
        Assert.Equal(new long[] { 3, 120, 8 }, emb.shape);
        var m = mask.unsqueeze(-1).to(float32);
        TensorAssert.AllClose(emb, reference * m, 1e-6, 1e-5, "real tokens");
        Assert.Equal(0, emb.masked_select(mask.unsqueeze(-1).expand_as(emb).eq(0)).abs().sum().item<float>());
    }

    [Fact]
    public void PreprocessingIsAnExplicitOption()
    {
        using var scope = NewDisposeScope();
        var dir = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 8);
        using var lower = T5PromptEncoder.Load(dir, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = 16 });
        using var raw = T5PromptEncoder.Load(dir, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = 16, Preprocessing = PromptPreprocessing.Mode.None });
        TensorAssert.Equal(lower.Encode(new[] { "  A RED CAR " }).Embeddings, lower.Encode(new[] { "a red car" }).Embeddings, "lower+strip");
        Assert.True((raw.Encode(new[] { "A RED CAR" }).Embeddings - raw.Encode(new[] { "a red car" }).Embeddings).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void ReleasingTheEncoderFreesTheModel()
    {
        var dir = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 9);
        var encoder = T5PromptEncoder.Load(dir, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = 8 });
        var weight = encoder.Model.SharedWeight;
        encoder.Dispose();
        Assert.True(weight.IsInvalid);
        Assert.Throws<ObjectDisposedException>(() => encoder.Encode(new[] { "x" }));
    }

    [Fact]
    public void FingerprintFollowsWeightsConfigTokenizerDtypeAndPreprocessingButNotTheFolder()
    {
        var a = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 10);
        string F(string dir, ScalarType? dtype = null, PromptPreprocessing.Mode mode = PromptPreprocessing.Mode.LowerStrip) =>
            T5PromptEncoder.Fingerprint(dir, TinyT5.SpieceModel, dtype, mode);
        string baseline = F(a);

        var copy = TestPaths.NewTempDir("t5");
        foreach (var f in Directory.GetFiles(a)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        Assert.Equal(baseline, F(copy));

        // One weight changed in the middle of the file.
        var tuned = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 10, edit: w => w["encoder.block.1.layer.0.SelfAttention.v.weight"].add_(0.01));
        Assert.NotEqual(baseline, F(tuned));
        Assert.NotEqual(baseline, F(TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 11)));
        Assert.NotEqual(baseline, F(a, ScalarType.BFloat16));
        Assert.NotEqual(baseline, F(a, mode: PromptPreprocessing.Mode.None));

        var cfg = TinyT5.Config();
        cfg["layer_norm_epsilon"] = 1e-5;
        File.WriteAllText(Path.Combine(copy, "config.json"), cfg.ToJsonString());
        Assert.NotEqual(baseline, F(copy));
    }
}
