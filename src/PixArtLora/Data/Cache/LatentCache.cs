using PixArtLora.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Data.Cache;

/// <summary>
/// What determines one training image's latents: its content, the size it is resized to, the crop taken (in whatever
/// coordinates the image pipeline uses, as long as they are consistent), whether it is mirrored, and any other
/// preprocessing choice that changes the pixels (e.g. the resize filter). Changing any field misses the cache.
/// </summary>
/// <param name="ImageHash">A hash of the image file's bytes, e.g. <see cref="FeatureStore.HashFile"/>.</param>
public sealed record LatentCacheKey(
    string ImageHash, int TargetWidth, int TargetHeight,
    int CropX, int CropY, int CropWidth, int CropHeight,
    bool Flipped = false, string Preprocessing = "")
{
    /// <summary>The same image and settings, mirrored (or not).</summary>
    public LatentCacheKey WithFlip(bool flipped) => this with { Flipped = flipped };

    internal string StoreKey(string vaeIdentity) => FeatureStore.Key(
        "latent-posterior-v1", vaeIdentity, ImageHash, $"{TargetWidth}x{TargetHeight}",
        $"crop={CropX},{CropY},{CropWidth},{CropHeight}", Flipped ? "flip" : "noflip", Preprocessing);
}

/// <summary>
/// VAE posteriors of training images, stored on disk through a <see cref="FeatureStore"/>. It keeps each image's
/// posterior mean and std (not a sample), so training draws a fresh latent every epoch exactly as encoding on the fly
/// would: <c>mean + std · ε</c> with the trainer's generator (<see cref="Sample"/>). Entries are keyed by
/// <see cref="LatentCacheKey"/> and by the VAE's identity (config, dtype and weights), so a different image, size,
/// crop, flip or VAE never reads a stale entry.
/// </summary>
public sealed class LatentCache : IDisposable
{
    const string MeanName = "mean", StdName = "std";

    readonly FeatureStore _store;
    readonly AutoencoderKL _vae;

    /// <summary>The VAE's <see cref="AutoencoderKL.ComputeIdentity"/>, part of every key.</summary>
    public string VaeIdentity { get; }

    /// <summary>Images encoded (cache misses) since this cache was opened.</summary>
    public int EncodedCount { get; private set; }

    LatentCache(FeatureStore store, AutoencoderKL vae, string identity)
    {
        _store = store;
        _vae = vae;
        VaeIdentity = identity;
    }

    /// <summary>Opens (or creates) the cache in <paramref name="folder"/> for <paramref name="vae"/>; hashes the VAE's weights once.</summary>
    public static LatentCache Open(string folder, AutoencoderKL vae) => new(FeatureStore.Open(folder), vae, vae.ComputeIdentity());

    /// <summary>Whether <paramref name="key"/> is cached for this VAE.</summary>
    public bool Contains(LatentCacheKey key) => _store.Contains(key.StoreKey(VaeIdentity));

    /// <summary>
    /// The posterior of one image, [1, latent_channels, h, w], on <paramref name="device"/> (CPU by default), in the VAE's dtype.
    /// On a miss, <paramref name="pixels"/> is called for the prepared image ([3, H, W] or [1, 3, H, W] in [-1, 1], already
    /// resized, cropped and flipped as <paramref name="key"/> says), which is encoded and stored.
    /// </summary>
    public DiagonalGaussianDistribution GetOrEncode(LatentCacheKey key, Func<Tensor> pixels, Device? device = null)
    {
        string storeKey = key.StoreKey(VaeIdentity);
        if (TryRead(storeKey, device, out var cached)) return cached;
        using var scope = NewDisposeScope();
        var image = Prepare(pixels(), key);
        using var posterior = _vae.Encode(image);
        return Store(storeKey, posterior, device);
    }

    /// <summary>
    /// The posteriors of an image and, when <paramref name="withFlip"/>, of its mirror image (the prepared pixels flipped
    /// left–right), calling <paramref name="pixels"/> at most once. <paramref name="key"/>'s own flip flag is ignored.
    /// </summary>
    public (DiagonalGaussianDistribution Plain, DiagonalGaussianDistribution? Flipped) GetOrEncodeWithFlip(
        LatentCacheKey key, Func<Tensor> pixels, bool withFlip, Device? device = null)
    {
        using var scope = NewDisposeScope();
        Tensor? prepared = null;
        Tensor Pixels() => prepared ??= pixels();
        var plain = GetOrEncode(key.WithFlip(false), Pixels, device);
        var flipped = withFlip ? GetOrEncode(key.WithFlip(true), () => Pixels().flip(-1), device) : null;
        plain.MoveToOuterDisposeScope();
        flipped?.MoveToOuterDisposeScope();
        return (plain, flipped);
    }

    /// <summary>The cached posterior, or false when <paramref name="key"/> has not been encoded with this VAE.</summary>
    public bool TryGet(LatentCacheKey key, out DiagonalGaussianDistribution posterior, Device? device = null)
        => TryRead(key.StoreKey(VaeIdentity), device, out posterior!);

    /// <summary>A latent drawn from <paramref name="posterior"/>: exactly <see cref="DiagonalGaussianDistribution.Sample"/>,
    /// so cached and freshly encoded posteriors give the same latents for the same generator state.</summary>
    public static Tensor Sample(DiagonalGaussianDistribution posterior, Generator? generator) => posterior.Sample(generator);

    /// <summary>Drops every entry not among <paramref name="keep"/> (for this VAE) and deletes unused shards. Returns the number dropped.</summary>
    public int Prune(IEnumerable<LatentCacheKey> keep) =>
        _store.Prune(keep.Select(k => k.StoreKey(VaeIdentity)).ToHashSet());

    /// <summary>Writes pending entries to disk.</summary>
    public void Flush() => _store.Flush();

    public void Dispose() => _store.Dispose();

    bool TryRead(string storeKey, Device? device, out DiagonalGaussianDistribution posterior)
    {
        posterior = null!;
        if (!_store.TryGet(storeKey, out var tensors)) return false;
        if (!tensors.TryGetValue(MeanName, out var mean) || !tensors.TryGetValue(StdName, out var std))
            throw new InvalidDataException($"{_store.Folder}: latent cache entry {storeKey} lacks '{MeanName}' or '{StdName}'; delete the folder to rebuild it");
        posterior = DiagonalGaussianDistribution.FromMeanStd(MoveTo(mean, device), MoveTo(std, device));
        return true;
    }

    DiagonalGaussianDistribution Store(string storeKey, DiagonalGaussianDistribution posterior, Device? device)
    {
        _store.Put(storeKey, new Dictionary<string, Tensor> { [MeanName] = posterior.Mean, [StdName] = posterior.Std });
        EncodedCount++;
        // Return exactly what a later hit will read back: the stored bytes, in the stored dtype.
        if (!TryRead(storeKey, device, out var stored))
            throw new InvalidOperationException($"latent cache entry {storeKey} vanished right after it was stored");
        return stored.MoveToOuterDisposeScope();
    }

    static Tensor MoveTo(Tensor t, Device? device)
    {
        if (device is null || device.type == DeviceType.CPU) return t;
        var moved = t.to(device);
        t.Dispose();
        return moved;
    }

    Tensor Prepare(Tensor image, LatentCacheKey key)
    {
        var batched = image.dim() == 3 ? image.unsqueeze(0) : image;
        if (batched.dim() != 4 || batched.shape[0] != 1 || batched.shape[1] != _vae.Config.InChannels)
            throw new ArgumentException($"latent cache: pixels for image {key.ImageHash} must be [{_vae.Config.InChannels}, H, W] or [1, {_vae.Config.InChannels}, H, W], got [{string.Join(", ", image.shape)}]");
        if (batched.shape[2] != key.TargetHeight || batched.shape[3] != key.TargetWidth)
            throw new ArgumentException($"latent cache: pixels for image {key.ImageHash} are {batched.shape[3]}x{batched.shape[2]}, but the key says {key.TargetWidth}x{key.TargetHeight}");
        return batched;
    }
}
