using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// When and how <see cref="AutoencoderKL"/> splits a large image (or latent) into overlapping tiles, runs each tile
/// on its own and blends the overlaps linearly, as diffusers' <c>tiled_encode</c>/<c>tiled_decode</c> with
/// <c>blend_v</c>/<c>blend_h</c>. Tiling bounds memory by the tile size: an untiled 2048×2048 decode with the SDXL VAE
/// holds several 4 GB activations at once. Tiled results differ slightly from untiled ones (each tile normalises its own
/// statistics), so by default only images larger than any 1024-scale PixArt bucket are tiled.
/// </summary>
public sealed record VaeTiling
{
    /// <summary>Whether tiling may be used at all.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Images of at most this many pixels (H·W) run in one piece. The default, 1280², keeps every 256/512/1024
    /// aspect bucket untiled (all are ≤ 1024² pixels, matching diffusers) and tiles the 2048 ones.</summary>
    public long MaxUntiledPixels { get; init; } = 1280L * 1280;

    /// <summary>Tile side in image pixels; null takes the config's <c>sample_size</c>, as diffusers does.
    /// Must be a multiple of the VAE's spatial scale factor.</summary>
    public int? TileSize { get; init; }

    /// <summary>Fraction of a tile shared with each neighbour and blended (diffusers' <c>tile_overlap_factor</c>).</summary>
    public double OverlapFactor { get; init; } = 0.25;

    /// <summary>Tiling on, with diffusers' defaults and the size threshold above.</summary>
    public static VaeTiling Default { get; } = new();

    /// <summary>Never tile.</summary>
    public static VaeTiling Off { get; } = new() { Enabled = false };

    /// <summary>Tile everything larger than one tile of <paramref name="tileSize"/> pixels, whatever its area.</summary>
    public static VaeTiling Always(int? tileSize = null, double overlapFactor = 0.25) =>
        new() { MaxUntiledPixels = 0, TileSize = tileSize, OverlapFactor = overlapFactor };

    /// <summary>Whether an image of <paramref name="height"/>×<paramref name="width"/> pixels is tiled under these settings.</summary>
    public bool AppliesTo(long height, long width, AutoencoderKLConfig config) =>
        Enabled && height * width > MaxUntiledPixels && (height > TileSizeFor(config) || width > TileSizeFor(config));

    /// <summary>The tile side in pixels for <paramref name="config"/>, checked.</summary>
    public int TileSizeFor(AutoencoderKLConfig config)
    {
        int tile = TileSize ?? config.SampleSizePixels;
        int scale = config.SpatialScaleFactor;
        if (tile <= 0 || tile % scale != 0)
            throw new ArgumentException($"VAE tile size {tile} must be a positive multiple of the spatial scale factor {scale}");
        if (!(OverlapFactor >= 0 && OverlapFactor < 1))
            throw new ArgumentException($"VAE tile overlap factor {OverlapFactor} must be in [0, 1)");
        return tile;
    }

    /// <summary>Tile geometry in latent units: tile side, stride between tiles, and the blended overlap (tile − stride).
    /// For diffusers' usual values (e.g. 1024 px, 0.25) this is exactly its overlap_size / blend_extent / row_limit.</summary>
    internal (int Tile, int Stride, int Blend) LatentGeometry(AutoencoderKLConfig config)
    {
        int tile = TileSizeFor(config) / config.SpatialScaleFactor;
        int stride = (int)(tile * (1 - OverlapFactor));
        if (stride <= 0) throw new ArgumentException($"VAE tile of {tile} latents with overlap {OverlapFactor} leaves no stride between tiles");
        return (tile, stride, tile - stride);
    }

    /// <summary>
    /// Runs <paramref name="run"/> on overlapping tiles of <paramref name="input"/> and stitches the results. Input tiles
    /// are <paramref name="inTile"/> wide every <paramref name="inStride"/>; each output tile is blended over
    /// <paramref name="outBlend"/> rows/columns with its upper and left neighbours (already blended, as diffusers'
    /// in-place blend_v/blend_h leave them) and cropped to <paramref name="outStride"/>. Only one row of tiles is kept.
    /// </summary>
    internal static Tensor Stitch(Tensor input, int inTile, int inStride, int outStride, int outBlend, Func<Tensor, Tensor> run)
    {
        using var scope = NewDisposeScope();
        long height = input.shape[2], width = input.shape[3];
        var rows = new List<Tensor>();
        List<Tensor>? above = null;
        for (long i = 0; i < height; i += inStride)
        {
            var current = new List<Tensor>();
            var pieces = new List<Tensor>();
            int col = 0;
            for (long j = 0; j < width; j += inStride, col++)
            {
                var tile = run(input[.., .., TensorIndex.Slice(i, Math.Min(i + inTile, height)), TensorIndex.Slice(j, Math.Min(j + inTile, width))]);
                if (above != null) tile = Swap(tile, BlendVertical(above[col], tile, outBlend));
                if (col > 0) tile = Swap(tile, BlendHorizontal(current[col - 1], tile, outBlend));
                current.Add(tile);
                pieces.Add(tile[.., .., TensorIndex.Slice(0, outStride), TensorIndex.Slice(0, outStride)]);
            }
            rows.Add(cat(pieces, dim: 3));
            if (above != null) foreach (var t in above) t.Dispose();
            above = current;
        }
        return cat(rows, dim: 2).MoveToOuterDisposeScope();
    }

    static Tensor Swap(Tensor previous, Tensor next)
    {
        if (!ReferenceEquals(previous, next)) previous.Dispose();
        return next;
    }

    /// <summary>diffusers' blend_v: the first rows of <paramref name="b"/> fade in from the last rows of <paramref name="a"/>.</summary>
    internal static Tensor BlendVertical(Tensor a, Tensor b, int extent) => Blend(a, b, extent, dim: 2);

    /// <summary>diffusers' blend_h: the first columns of <paramref name="b"/> fade in from the last columns of <paramref name="a"/>.</summary>
    internal static Tensor BlendHorizontal(Tensor a, Tensor b, int extent) => Blend(a, b, extent, dim: 3);

    static Tensor Blend(Tensor a, Tensor b, int extent, int dim)
    {
        long e = Math.Min(Math.Min(a.shape[dim], b.shape[dim]), extent);
        if (e <= 0) return b;
        using var scope = NewDisposeScope();
        // weight of b at offset y is y/e; of a, 1 − y/e (exactly diffusers' per-row loop, vectorised)
        var shape = new long[] { 1, 1, 1, 1 };
        shape[dim] = e;
        var w = (arange(e, dtype: float64) / (double)e).to(b.dtype, b.device).reshape(shape);
        var fromA = a.narrow(dim, a.shape[dim] - e, e);
        var head = b.narrow(dim, 0, e);
        var blended = fromA * (1.0 - w) + head * w;
        var result = cat(new[] { blended, b.narrow(dim, e, b.shape[dim] - e) }, dim);
        return result.MoveToOuterDisposeScope();
    }
}
