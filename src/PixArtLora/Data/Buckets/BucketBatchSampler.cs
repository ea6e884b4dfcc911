namespace PixArtLora.Data.Buckets;

/// <summary>
/// Where a data loader stands: the epoch, and the index of the next batch within it. The trainer saves this in
/// its checkpoints and passes it back to <see cref="BucketBatchSampler.From"/> to resume exactly.
/// </summary>
public readonly record struct DataLoaderPosition(int Epoch, int BatchIndex)
{
    /// <summary>The start of training.</summary>
    public static DataLoaderPosition Start => new(0, 0);
}

/// <summary>One batch chosen by the sampler: items of one bucket.</summary>
/// <param name="Epoch">Epoch the batch belongs to.</param>
/// <param name="BatchIndex">Index within the epoch.</param>
/// <param name="Bucket">The bucket all items share.</param>
/// <param name="Items">Item indices into the dataset.</param>
/// <param name="Next">The position after this batch (what to checkpoint once the batch is trained on).</param>
public sealed record SampledBatch(int Epoch, int BatchIndex, Bucket Bucket, IReadOnlyList<int> Items, DataLoaderPosition Next);

/// <summary>
/// Batches that never mix buckets, with every item seen exactly once per epoch. Each epoch shuffles the items of
/// every bucket, cuts them into batches (the last, smaller batch of a bucket is kept unless <c>dropLast</c>), then
/// shuffles the batch order; all of it is a pure function of (seed, epoch), so the same seed always gives the same
/// batches and a run resumed from a <see cref="DataLoaderPosition"/> continues exactly where it stopped.
/// </summary>
public sealed class BucketBatchSampler
{
    readonly BucketAssignment _buckets;
    readonly long _seed;
    readonly bool _shuffle;
    readonly bool _dropLast;

    /// <summary>Creates a sampler over <paramref name="buckets"/>.</summary>
    public BucketBatchSampler(BucketAssignment buckets, int batchSize, long seed, bool shuffle = true, bool dropLast = false)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size {batchSize} must be positive");
        _buckets = buckets;
        BatchSize = batchSize;
        _seed = seed;
        _shuffle = shuffle;
        _dropLast = dropLast;
        BatchesPerEpoch = buckets.Buckets.Sum(b => dropLast ? b.Items.Count / batchSize : (b.Items.Count + batchSize - 1) / batchSize);
        if (BatchesPerEpoch == 0)
            throw new ArgumentException($"batch size {batchSize} with drop_last leaves no batch: the largest bucket has {buckets.Buckets.Max(b => b.Items.Count)} items");
    }

    /// <summary>Items per batch (the last batch of a bucket may be smaller unless dropLast).</summary>
    public int BatchSize { get; }

    /// <summary>Batches in every epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>The batches of epoch <paramref name="epoch"/>, in order.</summary>
    public IReadOnlyList<SampledBatch> Epoch(int epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch));
        var rng = DeterministicRandom.For(_seed, epoch);
        var groups = new List<(Bucket Bucket, int[] Items)>();
        foreach (var bucket in _buckets.Buckets)
        {
            var order = bucket.Items.ToArray();
            if (_shuffle) rng.Shuffle(order);
            for (int start = 0; start < order.Length; start += BatchSize)
            {
                int n = Math.Min(BatchSize, order.Length - start);
                if (n < BatchSize && _dropLast) break;
                groups.Add((bucket, order[start..(start + n)]));
            }
        }
        if (_shuffle) rng.Shuffle(groups);
        var batches = new SampledBatch[groups.Count];
        for (int i = 0; i < groups.Count; i++)
        {
            var next = i + 1 < groups.Count ? new DataLoaderPosition(epoch, i + 1) : new DataLoaderPosition(epoch + 1, 0);
            batches[i] = new SampledBatch(epoch, i, groups[i].Bucket, groups[i].Items, next);
        }
        return batches;
    }

    /// <summary>Batches from <paramref name="position"/> on, across epochs without end; the caller stops when done.</summary>
    public IEnumerable<SampledBatch> From(DataLoaderPosition position)
    {
        if (position.BatchIndex < 0 || position.BatchIndex > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(position), $"batch index {position.BatchIndex} is outside epoch of {BatchesPerEpoch} batches");
        for (int epoch = position.Epoch; ; epoch++)
        {
            var batches = Epoch(epoch);
            for (int i = epoch == position.Epoch ? position.BatchIndex : 0; i < batches.Count; i++) yield return batches[i];
        }
    }
}
