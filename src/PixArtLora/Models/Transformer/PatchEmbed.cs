using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// diffusers' <c>PatchEmbed</c> (embeddings.py) as PixArt uses it: a patch_size-strided convolution turns the latent
/// [B, C, H, W] into tokens [B, (H/p)·(W/p), D] (row-major over patches), plus the 2-D sin-cos position table.
/// </summary>
/// <remarks>
/// The table is not a parameter (diffusers registers it as a non-persistent buffer, absent from the checkpoint). It is
/// computed for the actual patch grid of each input — so non-square and other-size latents get positions stretched to
/// the training grid (<c>base_size = sample_size / patch_size</c>) divided by the interpolation scale — and the few
/// most recent grids are cached per device.
/// </remarks>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // diffusers key names
    public readonly Conv2d proj;
#pragma warning restore IDE1006

    readonly int _patchSize;
    readonly int _embedDim;
    readonly int _baseSize;
    readonly double _interpolationScale;
    // A few recent grids only: a 1024-px table is ~19 MB in float32 (76 MB at 2K), and a multi-aspect run visits
    // up to 40 grids, so caching them all would hold most of a GB.
    const int CachedTables = 4;
    readonly List<((long H, long W, string Device) Key, Tensor Table)> _tables = new();

    public PatchEmbed(int sampleSize, int patchSize, int inChannels, int embedDim, double interpolationScale, Device? device = null, ScalarType? dtype = null)
        : base(nameof(PatchEmbed))
    {
        _patchSize = patchSize;
        _embedDim = embedDim;
        _baseSize = sampleSize / patchSize;
        _interpolationScale = interpolationScale;
        proj = nn.Conv2d(inChannels, embedDim, (patchSize, patchSize), stride: (patchSize, patchSize), bias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The [1, gridH·gridW, D] float32 position table added for a patch grid of <paramref name="gridHeight"/> × <paramref name="gridWidth"/>.</summary>
    public Tensor PositionTable(long gridHeight, long gridWidth, Device device)
    {
        var key = (gridHeight, gridWidth, device.ToString());
        lock (_tables)
        {
            int hit = _tables.FindIndex(e => e.Key == key);
            if (hit >= 0)
            {
                var entry = _tables[hit];
                _tables.RemoveAt(hit);
                _tables.Add(entry);   // most recently used last
                return entry.Table;
            }
            using var cpu = SinusoidalEmbeddings.PositionTable2D(_embedDim, (int)gridHeight, (int)gridWidth, _baseSize, _interpolationScale);
            var table = cpu.unsqueeze(0).to(device).DetachFromDisposeScope();
            if (_tables.Count == CachedTables)
            {
                _tables[0].Table.Dispose();
                _tables.RemoveAt(0);
            }
            _tables.Add((key, table));
            return table;
        }
    }

    public override Tensor forward(Tensor latent)
    {
        using var scope = NewDisposeScope();
        long h = latent.shape[^2] / _patchSize, w = latent.shape[^1] / _patchSize;
        var tokens = Patchify(latent, h, w);   // [B, N, D], patches row-major over (h, w)
        var table = PositionTable(h, w, tokens.device);
        // The sum is taken in float32 (the table's dtype) and cast back, as the reference does.
        return (tokens + table).to(tokens.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The strided convolution computed as what it is, a linear map of each p×p patch: [B, C, H, W] →
    /// [B, C, h, p, w, p] → [B, h·w, C·p·p] times the [D, C·p·p] view of <c>proj.weight</c>. Same numbers as
    /// conv2d, but through one GEMM: libtorch 2.10's bf16 CPU convolution returns wrong results for some channel
    /// counts (measured: 24 output channels off by ~40 %, 16 and 32 fine), and the GEMM path has no such case.
    /// </summary>
    Tensor Patchify(Tensor latent, long h, long w)
    {
        var weight = proj.weight!;
        long batch = latent.shape[0], channels = latent.shape[1];
        var patches = latent.to(weight.dtype)
            .reshape(batch, channels, h, _patchSize, w, _patchSize)
            .permute(0, 2, 4, 1, 3, 5)
            .reshape(batch, h * w, channels * _patchSize * _patchSize);
        return nn.functional.linear(patches, weight.reshape(weight.shape[0], -1), proj.bias);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            lock (_tables)
            {
                foreach (var (_, table) in _tables) table.Dispose();
                _tables.Clear();
            }
        base.Dispose(disposing);
    }
}
