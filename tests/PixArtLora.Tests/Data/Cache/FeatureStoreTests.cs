using PixArtLora.Data.Cache;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Data.Cache;

public class FeatureStoreTests
{
    [Fact]
    public void EntriesRoundTripExactlyAcrossReopen()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("cache");
        var a = randn(3, 7);
        var b = randn(2).to(bfloat16);
        string k1 = FeatureStore.Key("t5", "120", "a red cube");
        using (var store = FeatureStore.Open(dir))
        {
            store.Put(k1, new Dictionary<string, Tensor> { ["emb"] = a, ["mask"] = b });
            Assert.True(store.TryGet(k1, out var pending));
            TensorAssert.Equal(pending["emb"], a, "pending");
        }
        using (var store = FeatureStore.Open(dir))
        {
            Assert.True(store.TryGet(k1, out var got));
            TensorAssert.Equal(got["emb"], a, "emb");
            TensorAssert.Equal(got["mask"], b, "mask");
            Assert.Equal(ScalarType.BFloat16, got["mask"].dtype);
            Assert.False(store.TryGet(FeatureStore.Key("t5", "300", "a red cube"), out _));
        }
    }

    [Fact]
    public void KeysDependOnEveryPartAndItsBoundaries()
    {
        Assert.NotEqual(FeatureStore.Key("ab", "c"), FeatureStore.Key("a", "bc"));
        Assert.Equal(FeatureStore.Key("x", "y"), FeatureStore.Key("x", "y"));
        Assert.Equal(64, FeatureStore.Key("x").Length);
    }

    [Fact]
    public void PruneDropsUnusedEntriesAndShards()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("cache");
        using var store = FeatureStore.Open(dir);
        store.Put("old", new Dictionary<string, Tensor> { ["x"] = ones(4) });
        store.Flush();
        store.Put("new", new Dictionary<string, Tensor> { ["x"] = zeros(4) });
        store.Flush();
        Assert.Equal(2, Directory.GetFiles(dir, "shard-*").Length);
        Assert.Equal(1, store.Prune(new HashSet<string> { "new" }));
        Assert.Single(Directory.GetFiles(dir, "shard-*"));
        Assert.False(store.Contains("old"));
        Assert.True(store.TryGet("new", out var got));
        TensorAssert.Equal(got["x"], zeros(4), "kept");
    }

    [Fact]
    public void PendingEntriesSurviveTheDisposeScopesTheyWerePutIn()
    {
        var dir = TestPaths.NewTempDir("cache");
        using var store = FeatureStore.Open(dir);
        using (NewDisposeScope())
        {
            using (NewDisposeScope()) store.Put("k", new Dictionary<string, Tensor> { ["x"] = arange(5) });
        }
        store.Flush();
        using var scope = NewDisposeScope();
        Assert.True(store.TryGet("k", out var got));
        TensorAssert.Equal(got["x"], arange(5), "x");
    }

    [Fact]
    public void MissingShardIsAClearError()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("cache");
        using (var store = FeatureStore.Open(dir)) store.Put("k", new Dictionary<string, Tensor> { ["x"] = ones(2) });
        foreach (var f in Directory.GetFiles(dir, "shard-*")) File.Delete(f);
        using var reopened = FeatureStore.Open(dir);
        var ex = Assert.Throws<InvalidDataException>(() => reopened.TryGet("k", out _));
        Assert.Contains("missing", ex.Message);
    }
}
