using Microsoft.ML.Tokenizers;
using PixArtLora.Models.TextEncoder;

namespace PixArtLora.Tests.Models.TextEncoder;

public class T5TokenizerTests
{
    static readonly Lazy<T5Tokenizer> Shared = new(() => T5Tokenizer.Load(TinyT5.SpieceModel));
    static T5Tokenizer Tok => Shared.Value;

    [Fact]
    public void MlTokenizersStillNeedsTheBosPatch()
    {
        // The measured library defect the patch works around; if an update fixes it, this test says so.
        var raw = File.ReadAllBytes(TinyT5.SpieceModel);
        Assert.Equal(-1, SentencePieceModelFile.BosId(raw));
        Assert.ThrowsAny<IndexOutOfRangeException>(() => SentencePieceTokenizer.Create(new MemoryStream(raw), false, false));
        var patched = SentencePieceModelFile.PatchForMlTokenizers(raw);
        Assert.Equal(1, SentencePieceModelFile.BosId(patched));
        Assert.Equal(32000, SentencePieceModelFile.PieceCount(patched));
        Assert.Equal(SentencePieceModelFile.UnkId(raw), SentencePieceModelFile.UnkId(patched));
        Assert.NotNull(SentencePieceTokenizer.Create(new MemoryStream(patched), false, false));
    }

    [Fact]
    public void KnownIdsOfTheRealModel()
    {
        // source.json's check, from SentencePiece itself.
        Assert.Equal(new[] { 8774, 296 }, Tok.Tokenize("Hello world"));
        Assert.Equal((0, 1, 2, 32100), (Tok.PadTokenId, Tok.EosTokenId, Tok.UnkTokenId, Tok.VocabSize));
    }

    [Fact]
    public void RunsOfUnknownCharactersBecomeOneUnk()
    {
        Assert.Equal(new[] { 3, 2 }, Tok.Tokenize("🐱🚀"));
        Assert.Equal(new[] { 3, 2, 3, 2 }, Tok.Tokenize("🐱 🚀"));
        // A literal <unk> beside unknown characters stays a token of its own.
        Assert.Equal(new[] { 2, 3, 2 }, Tok.Tokenize("<unk>🐱🚀"));
    }

    [Fact]
    public void LiteralSpecialTokensAreSplitOutAndExtraIdsCountDown()
    {
        Assert.Equal(new[] { 32099, 32000 }, Tok.Tokenize("<extra_id_0><extra_id_99>"));
        Assert.DoesNotContain(31999, Tok.Tokenize("<extra_id_100>"));
        Assert.Equal(Tok.Tokenize("a photo"), Tok.Tokenize("a photo   </s>").Take(Tok.Tokenize("a photo").Count));
        Assert.Equal(1, Tok.Tokenize("a photo   </s>")[^1]);
    }

    [Fact]
    public void PaddingTruncationAndEos()
    {
        var empty = Tok.Encode("", 120);
        Assert.Equal(1, empty.InputIds[0]);
        Assert.All(empty.InputIds.Skip(1), id => Assert.Equal(0, id));
        Assert.Equal(1, empty.TokenCount);

        string longText = string.Join(" ", Enumerable.Repeat("a red cube", 100));
        var ids = Tok.Tokenize(longText);
        Assert.True(ids.Count > 120);
        var enc = Tok.Encode(longText, 120);
        Assert.Equal(ids.Take(119).Select(i => (long)i), enc.InputIds.Take(119));
        Assert.Equal(1, enc.InputIds[119]);
        Assert.Equal(120, enc.TokenCount);

        // Text already ending in a literal </s> gets no second one.
        var withEos = Tok.Encode("a cat</s>", 10);
        Assert.Equal(Tok.Tokenize("a cat").Count + 1, withEos.TokenCount);
    }

    [Fact]
    public void BatchTensorsMatchSingleEncodings()
    {
        var (ids, mask) = Tok.EncodeBatch(new[] { "a cat", "" }, 7);
        Assert.Equal(new long[] { 2, 7 }, ids.shape);
        Assert.Equal(Tok.Encode("a cat", 7).InputIds, ids[0].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 0, 0, 0, 0, 0, 0 }, mask[1].data<long>().ToArray());
    }

    [Fact]
    public void FolderWithNonLegacyConfigIsRefusedWithItsPath()
    {
        var dir = TestPaths.NewTempDir("tok");
        File.Copy(TinyT5.SpieceModel, Path.Combine(dir, "spiece.model"));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"extra_ids\": 100}");
        Assert.Equal(32100, T5Tokenizer.Load(dir).VocabSize);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"legacy\": false}");
        var ex = Assert.Throws<NotSupportedException>(() => T5Tokenizer.Load(dir));
        Assert.Contains("tokenizer_config.json", ex.Message);
    }

    [Fact]
    public void GarbageModelFileIsAClearError()
    {
        var path = Path.Combine(TestPaths.NewTempDir("tok"), "spiece.model");
        File.WriteAllBytes(path, new byte[] { 0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2 });
        var ex = Assert.Throws<InvalidDataException>(() => T5Tokenizer.Load(path));
        Assert.Contains(path, ex.Message);
    }
}

public class ProtobufFieldRewriterTests
{
    // message { 1: "ab" (bytes), 2: { 40: 0, 41: -1, 7: fixed32 }, 3: 5 (varint) }
    static byte[] Sample()
    {
        byte[] inner = { 0xC0, 0x02, 0x00, 0xC8, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x3D, 1, 2, 3, 4 };
        return new byte[] { 0x0A, 0x02, (byte)'a', (byte)'b', 0x12, (byte)inner.Length }.Concat(inner).Concat(new byte[] { 0x18, 0x05 }).ToArray();
    }

    [Fact]
    public void SetsANestedVarintAndKeepsEverythingElse()
    {
        var msg = Sample();
        Assert.Equal(-1, ProtobufFieldRewriter.GetVarint(msg, new[] { 2, 41 }));
        var patched = ProtobufFieldRewriter.SetVarint(msg, new[] { 2, 41 }, 1);
        Assert.Equal(1, ProtobufFieldRewriter.GetVarint(patched, new[] { 2, 41 }));
        Assert.Equal(0, ProtobufFieldRewriter.GetVarint(patched, new[] { 2, 40 }));
        Assert.Equal(5, ProtobufFieldRewriter.GetVarint(patched, new[] { 3 }));
        // Field 1 and the fixed32 survive byte for byte; the negative varint shrank from 10 bytes to 1.
        Assert.Equal(new byte[] { 0x0A, 0x02, (byte)'a', (byte)'b' }, patched.Take(4));
        Assert.Equal(msg.Length - 9, patched.Length);
        Assert.True(patched.AsSpan().IndexOf(new byte[] { 0x3D, 1, 2, 3, 4 }) > 0);
    }

    [Fact]
    public void AddsAbsentFieldsAndRejectsTruncatedInput()
    {
        var added = ProtobufFieldRewriter.SetVarint(new byte[] { 0x18, 0x05 }, new[] { 2, 41 }, -1);
        Assert.Equal(-1, ProtobufFieldRewriter.GetVarint(added, new[] { 2, 41 }));
        Assert.Equal(5, ProtobufFieldRewriter.GetVarint(added, new[] { 3 }));
        Assert.Throws<InvalidDataException>(() => ProtobufFieldRewriter.GetVarint(new byte[] { 0x12, 0x09, 0x00 }, new[] { 2, 41 }));
    }
}

public class PythonTextTests
{
    [Theory]
    [InlineData("İstanbul", "i\u0307stanbul")]
    [InlineData("ΣΊΣΥΦΟΣ ΚΑΙ ΟΔΥΣΣΕΑΣ", "σίσυφος και οδυσσεας")]
    [InlineData("PixArt-Σ", "pixart-σ")]
    [InlineData("Σ", "σ")]
    [InlineData("ΑΣ.", "ας.")]
    [InlineData("ΑΣΑ", "ασα")]
    [InlineData("Straße ẞ", "straße ß")]
    [InlineData("ＡＢＣ Ⅻ", "ａｂｃ ⅻ")]
    public void LowerFollowsPython(string input, string expected) => Assert.Equal(expected, PythonText.Lower(input));

    [Fact]
    public void StripUsesPythonWhitespace()
    {
        Assert.Equal("a b", PythonText.Strip("\x1c\t\u3000a b\u2009\n\x85"));
        Assert.Equal("\u200ba", PythonText.Strip(" \u200ba "));  // zero-width space is not whitespace to Python
        Assert.Equal("a red car", PromptPreprocessing.Apply("  A RED CAR \n", PromptPreprocessing.Mode.LowerStrip));
        Assert.Equal("A RED CAR", PromptPreprocessing.Apply("  A RED CAR \n", PromptPreprocessing.Mode.Strip));
    }
}
