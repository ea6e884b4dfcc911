using System.Globalization;
using PixArtLora.Registry;

namespace PixArtLora.Data.Buckets;

/// <summary>How images are sized for training.</summary>
public enum BucketMode
{
    /// <summary>Every image becomes resolution × resolution (resize shorter side, crop).</summary>
    SingleResolution,
    /// <summary>Every image goes to the aspect-ratio bin nearest its own ratio (PixArt's multi-scale training).</summary>
    MultiScale,
}

/// <summary>
/// A group of items trained at one pixel size. <see cref="AspectRatio"/> is the value PixArt-α's micro-conditioning
/// receives: the bin's ratio (height / width) from the table, or 1.0 for single resolution, as the official datasets pass.
/// </summary>
public sealed record Bucket(int Id, int Width, int Height, string Ratio, IReadOnlyList<int> Items)
{
    /// <summary>The bin's aspect ratio (height / width) as a number.</summary>
    public double AspectRatio => double.Parse(Ratio, CultureInfo.InvariantCulture);
}

/// <summary>
/// Assigns each dataset item to a bucket using only its original size (header or label), never its pixels.
/// Multi-scale uses the official training tables (<see cref="AspectRatioBins.ForTraining"/>): the bin whose ratio
/// is nearest height / width, ties to the earlier bin.
/// </summary>
public sealed class BucketAssignment
{
    readonly int[] _bucketOfItem;

    BucketAssignment(BucketMode mode, int baseResolution, IReadOnlyList<Bucket> buckets, int[] bucketOfItem)
    {
        Mode = mode;
        BaseResolution = baseResolution;
        Buckets = buckets;
        _bucketOfItem = bucketOfItem;
    }

    /// <summary>Single resolution or multi-scale.</summary>
    public BucketMode Mode { get; }

    /// <summary>The resolution (single) or the table's base resolution (multi-scale).</summary>
    public int BaseResolution { get; }

    /// <summary>Buckets holding at least one item, in table order; <see cref="Bucket.Id"/> is the position here.</summary>
    public IReadOnlyList<Bucket> Buckets { get; }

    /// <summary>Number of items assigned.</summary>
    public int ItemCount => _bucketOfItem.Length;

    /// <summary>The bucket of item <paramref name="itemIndex"/>.</summary>
    public Bucket BucketOf(int itemIndex) => Buckets[_bucketOfItem[itemIndex]];

    /// <summary>All items in one bucket of <paramref name="resolution"/>².</summary>
    public static BucketAssignment SingleResolution(ImageDataset dataset, int resolution) =>
        SingleResolution(dataset.Count, resolution);

    /// <summary>All <paramref name="itemCount"/> items in one bucket of <paramref name="resolution"/>².</summary>
    public static BucketAssignment SingleResolution(int itemCount, int resolution)
    {
        if (resolution <= 0) throw new ArgumentOutOfRangeException(nameof(resolution), $"resolution {resolution} must be positive");
        if (itemCount <= 0) throw new ArgumentException("cannot bucket an empty dataset");
        var bucket = new Bucket(0, resolution, resolution, "1.0", Enumerable.Range(0, itemCount).ToArray());
        return new BucketAssignment(BucketMode.SingleResolution, resolution, [bucket], new int[itemCount]);
    }

    /// <summary>Each item into the nearest bin of <paramref name="table"/>.</summary>
    public static BucketAssignment MultiScale(ImageDataset dataset, AspectRatioTable table) =>
        MultiScale(dataset.Items.Select(i => (i.Width, i.Height)).ToList(), table);

    /// <summary>Items of the given original sizes into the nearest bins of <paramref name="table"/>.</summary>
    public static BucketAssignment MultiScale(IReadOnlyList<(int Width, int Height)> sizes, AspectRatioTable table)
    {
        if (sizes.Count == 0) throw new ArgumentException("cannot bucket an empty dataset");
        var binIndex = new int[sizes.Count];
        var members = new Dictionary<int, List<int>>();
        for (int i = 0; i < sizes.Count; i++)
        {
            var bin = table.Nearest(sizes[i].Height, sizes[i].Width);
            int b = IndexOf(table, bin);
            binIndex[i] = b;
            if (!members.TryGetValue(b, out var list)) members[b] = list = new List<int>();
            list.Add(i);
        }
        var buckets = new List<Bucket>();
        var idOfBin = new Dictionary<int, int>();
        foreach (var b in members.Keys.Order())
        {
            var bin = table.Bins[b];
            idOfBin[b] = buckets.Count;
            buckets.Add(new Bucket(buckets.Count, bin.Width, bin.Height, bin.Ratio, members[b]));
        }
        return new BucketAssignment(BucketMode.MultiScale, table.BaseResolution, buckets, binIndex.Select(b => idOfBin[b]).ToArray());
    }

    static int IndexOf(AspectRatioTable table, AspectRatioBin bin)
    {
        for (int i = 0; i < table.Bins.Count; i++) if (table.Bins[i] == bin) return i;
        throw new InvalidOperationException($"bin {bin} not in table {table.Name}");
    }

    /// <summary>A one-line description: number of buckets and their sizes with item counts.</summary>
    public string Describe() =>
        $"{Mode} at {BaseResolution}: {Buckets.Count} bucket(s): " +
        string.Join(", ", Buckets.Select(b => $"{b.Width}x{b.Height} ({b.Items.Count})"));
}
