using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

public class TrainingRandomTests
{
    static Tensor Draw(TrainingRandom r, string stream) => r.Randn(stream, new long[] { 6 }, ScalarType.Float32, CPU);

    [Fact]
    public void SavedStatesReplayTheSameNumbers()
    {
        using var scope = NewDisposeScope();
        using var r = new TrainingRandom(17);
        Draw(r, "noise"); r.Permutation("data", 10);
        var saved = r.SaveStates();
        var noise = Draw(r, "noise");
        var order = r.Permutation("data", 10);
        var global = randn(3);

        using var fresh = new TrainingRandom(99); // another seed: everything must come from the states
        fresh.LoadStates(saved);
        TensorAssert.Equal(Draw(fresh, "noise"), noise, "noise stream");
        Assert.Equal(order, fresh.Permutation("data", 10));
        TensorAssert.Equal(randn(3), global, "global torch generator");
    }

    [Fact]
    public void StreamsAreIndependentAndSeeded()
    {
        using var scope = NewDisposeScope();
        using var a = new TrainingRandom(5);
        using var b = new TrainingRandom(5);
        Draw(a, "dropout"); Draw(a, "dropout"); // extra draws on another stream...
        TensorAssert.Equal(Draw(a, "noise"), Draw(b, "noise"), "...do not shift the noise stream");
        using var c = new TrainingRandom(6);
        using var d = new TrainingRandom(5);
        Assert.NotEqual(Values(Draw(c, "noise")), Values(Draw(d, "noise"))); // another seed, other numbers
        Assert.NotEqual(Values(Draw(b, "x")), Values(Draw(b, "y")));         // streams differ from each other
    }

    static float[] Values(Tensor t) => t.data<float>().ToArray();

    [Fact]
    public void SaveAndLoadRestoreTheSeedWithTheStreams()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("rng");
        using var original = new TrainingRandom(21);
        Draw(original, "noise");
        original.Save(dir);
        using var resumed = new TrainingRandom(1);
        resumed.Load(dir);
        Assert.Equal(21, resumed.Seed);
        Assert.Equal(original.EpochPermutation(3, 12), resumed.EpochPermutation(3, 12));
        TensorAssert.Equal(Draw(resumed, "noise"), Draw(original, "noise"), "noise after load");
        TensorAssert.Equal(Draw(resumed, "new-stream"), Draw(original, "new-stream"), "a stream first used after the resume");
    }

    [Fact]
    public void EpochOrderDependsOnlyOnSeedAndEpoch()
    {
        using var a = new TrainingRandom(3);
        using var b = new TrainingRandom(3);
        a.Permutation("data", 50); // unrelated use of the data stream
        var order = a.EpochPermutation(4, 20);
        Assert.Equal(order, b.EpochPermutation(4, 20));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), order.OrderBy(i => i));
        Assert.NotEqual(order, a.EpochPermutation(5, 20));
    }
}
