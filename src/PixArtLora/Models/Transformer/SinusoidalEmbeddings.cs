using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// The fixed (unlearned) sinusoidal tables of PixArt: the 2-D sin-cos position table of the patch grid and the
/// sinusoidal projection of timesteps and micro-conditions. Both are computed in float32 as the reference does.
/// </summary>
public static class SinusoidalEmbeddings
{
    /// <summary>
    /// diffusers' <c>get_2d_sincos_pos_embed(embed_dim, (gridHeight, gridWidth), base_size, interpolation_scale)</c>:
    /// a [gridHeight·gridWidth, embedDim] float32 table, rows in row-major (h, w) order. The first half of the
    /// channels encodes the column (w) coordinate and the second half the row (h) coordinate — the reference
    /// names them the other way round, but <c>np.meshgrid(grid_w, grid_h)</c> puts w first.
    /// Positions are stretched so that any grid spans the same range as the <paramref name="baseSize"/> grid the
    /// model was trained on, divided by <paramref name="interpolationScale"/>.
    /// </summary>
    public static Tensor PositionTable2D(int embedDim, int gridHeight, int gridWidth, int baseSize, double interpolationScale, Device? device = null)
    {
        if (embedDim % 4 != 0) throw new ArgumentException($"position embedding width {embedDim} must be a multiple of 4 (sin and cos of two axes)");
        // numpy computes the grid in float32: arange(n, float32) / (n / base_size) / interpolation_scale.
        float[] Grid(int n)
        {
            var g = new float[n];
            float stretch = (float)((double)n / baseSize), scale = (float)interpolationScale;
            for (int i = 0; i < n; i++) g[i] = (float)i / stretch / scale;
            return g;
        }
        float[] gh = Grid(gridHeight), gw = Grid(gridWidth);
        int half = embedDim / 2;           // channels per axis
        int quarter = half / 2;            // sin (or cos) channels per axis
        // omega = 1 / 10000^(k / quarter), in float64 like numpy.
        var omega = new double[quarter];
        for (int k = 0; k < quarter; k++) omega[k] = 1.0 / Math.Pow(10000.0, k / (double)quarter);

        var table = new float[(long)gridHeight * gridWidth * embedDim];
        for (int i = 0; i < gridHeight; i++)
            for (int j = 0; j < gridWidth; j++)
            {
                long row = ((long)i * gridWidth + j) * embedDim;
                Fill(table, row, gw[j], omega, quarter);          // w coordinate: channels [0, half)
                Fill(table, row + half, gh[i], omega, quarter);   // h coordinate: channels [half, embedDim)
            }
        return torch.tensor(table, new long[] { (long)gridHeight * gridWidth, embedDim }, float32, device ?? CPU);
    }

    static void Fill(float[] table, long offset, float position, double[] omega, int quarter)
    {
        double pos = position;
        for (int k = 0; k < quarter; k++)
        {
            double angle = pos * omega[k];
            table[offset + k] = (float)Math.Sin(angle);
            table[offset + quarter + k] = (float)Math.Cos(angle);
        }
    }

    /// <summary>
    /// diffusers' <c>Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=0)</c>: for each value t of the
    /// 1-D <paramref name="values"/>, [cos(t·f_k) | sin(t·f_k)] with f_k = exp(−ln(10000)·k / (channels/2)), in float32.
    /// Used for diffusion timesteps and for α's resolution / aspect-ratio micro-conditions.
    /// </summary>
    public static Tensor TimestepProjection(Tensor values, int channels = 256, double maxPeriod = 10000)
    {
        if (values.dim() != 1) throw new ArgumentException($"timestep projection expects a 1-D tensor, got shape [{string.Join(", ", values.shape)}]");
        using var scope = NewDisposeScope();
        int half = channels / 2;
        var exponent = torch.arange(0, half, dtype: float32, device: values.device) * (-Math.Log(maxPeriod));
        exponent = exponent / (double)half;   // downscale_freq_shift = 0
        var freqs = exponent.exp();
        var args = values.to(float32).unsqueeze(1) * freqs.unsqueeze(0);
        var emb = torch.cat(new[] { args.cos(), args.sin() }, dim: -1);   // flip_sin_to_cos
        if (channels % 2 == 1) emb = nn.functional.pad(emb, new long[] { 0, 1, 0, 0 });
        return emb.MoveToOuterDisposeScope();
    }
}
