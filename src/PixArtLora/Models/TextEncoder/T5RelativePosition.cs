using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// T5's relative-position buckets (transformers' <c>T5Attention._relative_position_bucket</c>, after Mesh
/// TensorFlow). Half the buckets hold keys after the query, half keys before; within each half the first
/// half of the buckets are exact distances and the rest grow logarithmically up to <c>max_distance</c>.
/// </summary>
public static class T5RelativePosition
{
    /// <summary>
    /// The bucket of each relative position (key position − query position). <paramref name="bidirectional"/>
    /// is true for the encoder; the decoder variant maps every positive distance to bucket 0.
    /// </summary>
    public static Tensor Bucket(Tensor relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        using var scope = NewDisposeScope();
        var buckets = zeros_like(relativePosition, dtype: int64);
        var rel = relativePosition.to(int64);
        if (bidirectional)
        {
            numBuckets /= 2;
            buckets = buckets + rel.gt(0).to(int64) * numBuckets;
            rel = rel.abs();
        }
        else
        {
            rel = -minimum(rel, zeros_like(rel));
        }
        int maxExact = numBuckets / 2;
        var isSmall = rel.lt(maxExact);
        // Same float32 tensor arithmetic as the reference (log of 0 gives -inf here, but is_small masks it).
        var scaled = log(rel.to(float32) / maxExact) / Math.Log((double)maxDistance / maxExact) * (numBuckets - maxExact);
        var large = scaled.to(int64) + maxExact;
        large = minimum(large, full_like(large, numBuckets - 1));
        buckets = buckets + where(isSmall, rel, large);
        return buckets.MoveToOuterDisposeScope();
    }
}
