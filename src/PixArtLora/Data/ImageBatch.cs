using PixArtLora.Data.Buckets;
using PixArtLora.Data.Images;
using static TorchSharp.torch;

namespace PixArtLora.Data;

/// <summary>
/// What is decided for one item of a batch before any pixel is decoded: its transform and its caption.
/// <see cref="CacheKey"/> identifies the transformed image (content hash + size + crop + flip + filter), so a
/// feature cache can serve the item without decoding it.
/// </summary>
public sealed record PlannedItem(DatasetItem Item, ImageTransformPlan Plan, string Caption)
{
    /// <summary>The key of the transformed image: "sha256:&lt;hex&gt;;" followed by <see cref="ImageTransformPlan.CacheKey"/>.</summary>
    public string CacheKey => $"sha256:{Item.Image.ContentHash()};{Plan.CacheKey}";
}

/// <summary>
/// A training batch: pixels of one bucket, captions, and PixArt-α's micro-conditions. Dispose it to free its tensors.
/// Items whose image failed to decode are left out (and counted by the loader), so <see cref="Count"/> can be
/// smaller than the sampled batch.
/// </summary>
public sealed class ImageBatch : IDisposable
{
    internal ImageBatch(SampledBatch sampled, IReadOnlyList<PlannedItem> items, Tensor pixels, Tensor originalSizes, Tensor aspectRatios)
    {
        Sampled = sampled;
        Items = items;
        Pixels = pixels;
        OriginalSizes = originalSizes;
        AspectRatios = aspectRatios;
    }

    /// <summary>The sampler's batch (epoch, index, bucket, next position).</summary>
    public SampledBatch Sampled { get; }

    /// <summary>The items loaded, in batch order, with their plans and chosen captions.</summary>
    public IReadOnlyList<PlannedItem> Items { get; }

    /// <summary>Images [B, 3, H, W] in [-1, 1].</summary>
    public Tensor Pixels { get; }

    /// <summary>
    /// [B, 2] (height, width): the α "resolution" micro-condition: the original image size for multi-scale
    /// buckets, the training resolution for single-resolution training (as the official datasets pass img_hw).
    /// </summary>
    public Tensor OriginalSizes { get; }

    /// <summary>[B, 1]: the α "aspect_ratio" micro-condition: the bucket's ratio (height / width), 1.0 for single resolution.</summary>
    public Tensor AspectRatios { get; }

    /// <summary>Chosen captions ("" where dropped for classifier-free guidance).</summary>
    public IReadOnlyList<string> Captions => Items.Select(i => i.Caption).ToList();

    /// <summary>Items in the batch.</summary>
    public int Count => Items.Count;

    /// <summary>The loader position after this batch: checkpoint it once the batch has been trained on.</summary>
    public DataLoaderPosition Next => Sampled.Next;

    /// <inheritdoc/>
    public void Dispose()
    {
        Pixels.Dispose();
        OriginalSizes.Dispose();
        AspectRatios.Dispose();
    }
}
