using PixArtLora.Models.Common;
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
/// the training grid (<c>base_size = sample_size / patch_size</c>) divided by the interpolation scale — and cached per
/// grid size and device.
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
    readonly Dictionary<(long H, long W, string Device), Tensor> _tables = new();

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
            if (!_tables.TryGetValue(key, out var table))
            {
                using var cpu = SinusoidalEmbeddings.PositionTable2D(_embedDim, (int)gridHeight, (int)gridWidth, _baseSize, _interpolationScale);
                table = cpu.unsqueeze(0).to(device).DetachFromDisposeScope();
                _tables[key] = table;
            }
            return table;
        }
    }

    public override Tensor forward(Tensor latent)
    {
        using var scope = NewDisposeScope();
        long h = latent.shape[^2] / _patchSize, w = latent.shape[^1] / _patchSize;
        var tokens = DtypeBoundary.Call(proj, latent).flatten(2).transpose(1, 2);   // BCHW -> BNC
        var table = PositionTable(h, w, tokens.device);
        // The sum is taken in float32 (the table's dtype) and cast back, as the reference does.
        return (tokens + table).to(tokens.dtype).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            lock (_tables)
            {
                foreach (var t in _tables.Values) t.Dispose();
                _tables.Clear();
            }
        base.Dispose(disposing);
    }
}
