using PixArtLora.Data.Cache;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Tests.Models.TextEncoder;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Data.Cache;

public class TextFeatureCacheTests
{
    /// <summary>A real tiny T5 prompt encoder that counts the prompts it is asked to encode.</summary>
    sealed class CountingEncoder : IPromptEncoder
    {
        readonly T5PromptEncoder _inner;
        public List<string> Seen { get; } = new();
        public CountingEncoder(T5PromptEncoder inner) => _inner = inner;
        public int MaxLength => _inner.MaxLength;
        public (Tensor Embeddings, Tensor Mask) Encode(IReadOnlyList<string> prompts)
        {
            Seen.AddRange(prompts);
            return _inner.Encode(prompts);
        }
        public void Dispose() => _inner.Dispose();
    }

    sealed class Setup
    {
        public string Model = "", OtherModel = "", Folder = "";
        public int Loads;
        public CountingEncoder? Last;
        public TextFeatureCache Open(string? model = null, int maxLength = 32) => new(Folder,
            T5PromptEncoder.Fingerprint(model ?? Model, TinyT5.SpieceModel, null, PromptPreprocessing.Mode.LowerStrip), maxLength,
            () =>
            {
                Loads++;
                return Last = new CountingEncoder(T5PromptEncoder.Load(model ?? Model, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = maxLength }));
            });
    }

    static Setup NewSetup() => new()
    {
        Model = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 20),
        OtherModel = TinyT5.Write(TestPaths.NewTempDir("t5"), seed: 21),
        Folder = TestPaths.NewTempDir("textcache"),
    };

    static readonly string[] Captions = { "a red cube on a table", "two cats, one asleep", "a lighthouse at dusk, oil painting" };

    [Fact]
    public void RoundTripIsExactAndMatchesTheEncoder()
    {
        using var scope = NewDisposeScope();
        var s = NewSetup();
        Tensor fresh, freshMask;
        using (var cache = s.Open())
            (fresh, freshMask) = cache.GetOrEncode(Captions);
        using var direct = T5PromptEncoder.Load(s.Model, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = 32 });
        var (expected, expectedMask) = direct.Encode(Captions);
        TensorAssert.Equal(fresh, expected, "first call = encoder output");
        TensorAssert.Equal(freshMask, expectedMask, "mask");

        using var reopened = s.Open();
        var (again, againMask) = reopened.GetOrEncode(Captions.Reverse().ToList());
        Assert.Equal(1, s.Loads); // nothing encoded the second time: the encoder was never even loaded
        TensorAssert.Equal(again.flip(0), expected, "from disk");
        TensorAssert.Equal(againMask.flip(0), expectedMask, "mask from disk");
        Assert.Equal(ScalarType.Float32, again.dtype);
    }

    [Fact]
    public void EntriesAreStoredTrimmedToTheirTokens()
    {
        using var scope = NewDisposeScope();
        var s = NewSetup();
        using var cache = s.Open();
        cache.EnsureCached(Captions);
        var tokenizer = T5Tokenizer.Load(TinyT5.SpieceModel);
        Assert.True(cache.Store.TryGet(cache.KeyOf(Captions[1]), out var stored));
        Assert.Equal(new long[] { tokenizer.Encode(Captions[1], 32).TokenCount, 8 }, stored["emb"].shape);
        Assert.True(cache.Store.TryGet(cache.KeyOf(""), out var empty));
        Assert.Equal(new long[] { 1, 8 }, empty["emb"].shape);
    }

    [Fact]
    public void OnlyMissingCaptionsAreEncoded()
    {
        using var scope = NewDisposeScope();
        var s = NewSetup();
        var reports = new List<TextCacheProgress>();
        using var cache = s.Open();
        Assert.Equal(4, cache.EnsureCached(Captions.Append(Captions[0]), batchSize: 2, progress: new SyncProgress(reports)));
        Assert.Equal(new[] { "", Captions[0], Captions[1], Captions[2] }, s.Last!.Seen);
        Assert.Equal(new[] { new TextCacheProgress(0, 4), new(2, 4), new(4, 4) }, reports);
        Assert.Equal(0, cache.EnsureCached(Captions));

        var edited = new[] { Captions[0], "two dogs, one asleep", Captions[2] };
        cache.GetOrEncode(edited);
        Assert.Equal(5, s.Last.Seen.Count);
        Assert.Equal("two dogs, one asleep", s.Last.Seen[^1]);
        Assert.Equal(1, s.Loads);
    }

    [Fact]
    public void AnotherModelOrLengthMissesOnlyItsOwnEntries()
    {
        using var scope = NewDisposeScope();
        var s = NewSetup();
        using (var cache = s.Open()) cache.EnsureCached(Captions);
        Tensor other;
        using (var cache = s.Open(model: s.OtherModel))
        {
            Assert.Equal(4, cache.EnsureCached(Captions));
            other = cache.GetOrEncode(Captions).Embeddings;
        }
        using (var cache = s.Open(maxLength: 48))
        {
            Assert.Equal(4, cache.EnsureCached(Captions));
            Assert.Equal(48, cache.GetOrEncode(Captions).Embeddings.shape[1]);
        }
        int loads = s.Loads;
        using (var cache = s.Open())
        {
            Assert.Equal(0, cache.EnsureCached(Captions)); // the first model's entries survived both
            var mine = cache.GetOrEncode(Captions).Embeddings;
            Assert.True((mine - other).abs().max().item<float>() > 1e-3);
        }
        Assert.Equal(loads, s.Loads);
    }

    [Fact]
    public void PruneKeepsTheCurrentCaptionsAndTheEmptyPrompt()
    {
        using var scope = NewDisposeScope();
        var s = NewSetup();
        using var cache = s.Open();
        cache.EnsureCached(Captions);
        Assert.Equal(1, cache.Prune(Captions.Take(2)));
        Assert.True(cache.Contains(""));
        Assert.False(cache.Contains(Captions[2]));
        cache.ReleaseEncoder();
        cache.GetOrEncode(Captions);
        Assert.Equal(2, s.Loads);
    }

    [Fact]
    public void EncoderOfAnotherLengthIsRefused()
    {
        var s = NewSetup();
        using var cache = new TextFeatureCache(s.Folder, "fp", 32,
            () => T5PromptEncoder.Load(s.Model, TinyT5.SpieceModel, new T5PromptEncoderOptions { MaxLength = 16 }));
        var ex = Assert.Throws<InvalidOperationException>(() => cache.GetOrEncode(new[] { "x" }));
        Assert.Contains("16", ex.Message);
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; this records synchronously, in order.</summary>
    sealed class SyncProgress(List<TextCacheProgress> into) : IProgress<TextCacheProgress>
    {
        public void Report(TextCacheProgress value) => into.Add(value);
    }
}
