using PixArtLora.Data.Buckets;
using PixArtLora.Registry;

namespace PixArtLora.Tests.Data;

public class BucketBatchSamplerTests
{
    // 13 items in three buckets of 7, 5 and 1 (square, 0.68 and 3.11 at 256).
    static BucketAssignment ThreeBuckets()
    {
        var sizes = new List<(int, int)>();
        for (int i = 0; i < 13; i++) sizes.Add(i < 7 ? (100, 100) : i < 12 ? (600, 400) : (300, 1000));
        return BucketAssignment.MultiScale(sizes, AspectRatioBins.ForTraining(256));
    }

    static string Show(IEnumerable<SampledBatch> batches) =>
        string.Join(" | ", batches.Select(b => $"{b.Epoch}.{b.BatchIndex}:{b.Bucket.Ratio}[{string.Join(",", b.Items)}]"));

    [Fact]
    public void EveryEpochSeesEveryItemOnceAndBatchesNeverMixBuckets()
    {
        var buckets = ThreeBuckets();
        var sampler = new BucketBatchSampler(buckets, batchSize: 3, seed: 42);
        Assert.Equal(3 + 2 + 1, sampler.BatchesPerEpoch);
        for (int epoch = 0; epoch < 4; epoch++)
        {
            var batches = sampler.Epoch(epoch);
            Assert.Equal(sampler.BatchesPerEpoch, batches.Count);
            Assert.Equal(Enumerable.Range(0, 13), batches.SelectMany(b => b.Items).Order());
            foreach (var b in batches)
            {
                Assert.All(b.Items, i => Assert.Equal(b.Bucket, buckets.BucketOf(i)));
                Assert.InRange(b.Items.Count, 1, 3);
            }
            Assert.Equal(Enumerable.Range(0, batches.Count), batches.Select(b => b.BatchIndex));
        }
    }

    [Fact]
    public void OrderIsAFunctionOfSeedAndEpoch()
    {
        var buckets = ThreeBuckets();
        string a = Show(new BucketBatchSampler(buckets, 3, seed: 7).From(DataLoaderPosition.Start).Take(30));
        string b = Show(new BucketBatchSampler(buckets, 3, seed: 7).From(DataLoaderPosition.Start).Take(30));
        string c = Show(new BucketBatchSampler(buckets, 3, seed: 8).From(DataLoaderPosition.Start).Take(30));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var s = new BucketBatchSampler(buckets, 3, seed: 7);
        Assert.NotEqual(Show(s.Epoch(0)).Replace("0.", "x."), Show(s.Epoch(1)).Replace("1.", "x."));
    }

    [Fact]
    public void ResumesExactlyFromACheckpointedPosition()
    {
        var sampler = new BucketBatchSampler(ThreeBuckets(), 3, seed: 3);
        var run = sampler.From(DataLoaderPosition.Start).Take(20).ToList();
        // Checkpoint after batch 8 (epoch 1, index 2), then resume with a fresh sampler.
        var saved = run[8].Next;
        Assert.Equal(new DataLoaderPosition(1, 3), saved);
        var resumed = new BucketBatchSampler(ThreeBuckets(), 3, seed: 3).From(saved).Take(11).ToList();
        Assert.Equal(Show(run.Skip(9)), Show(resumed));
        Assert.Equal(new DataLoaderPosition(2, 0), run[11].Next); // last batch of epoch 1 points to the next epoch
    }

    [Fact]
    public void DropLastAndNoShuffle()
    {
        var buckets = ThreeBuckets();
        var drop = new BucketBatchSampler(buckets, 3, seed: 1, dropLast: true);
        Assert.Equal(2 + 1, drop.BatchesPerEpoch);
        Assert.All(drop.Epoch(0), b => Assert.Equal(3, b.Items.Count));

        var plain = new BucketBatchSampler(buckets, 3, seed: 1, shuffle: false);
        Assert.Equal("0.0:0.68[7,8,9] | 0.1:0.68[10,11] | 0.2:1.0[0,1,2] | 0.3:1.0[3,4,5] | 0.4:1.0[6] | 0.5:3.11[12]", Show(plain.Epoch(0))); // buckets in table order
        Assert.Throws<ArgumentException>(() => new BucketBatchSampler(BucketAssignment.SingleResolution(2, 64), 3, 0, dropLast: true));
    }
}
