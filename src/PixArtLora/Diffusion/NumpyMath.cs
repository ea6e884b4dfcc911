namespace PixArtLora.Diffusion;

/// <summary>
/// The few numpy routines diffusers and IDDPM build their timestep grids with, reproduced operation for operation
/// so that rounding ties (e.g. 499.5) land on the same integers as in the reference.
/// </summary>
internal static class NumpyMath
{
    /// <summary>np.linspace(start, stop, num): i · ((stop - start) / (num - 1)) + start, last element exactly stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        if (num < 0) throw new ArgumentOutOfRangeException(nameof(num), num, "linspace needs a non-negative count");
        var y = new double[num];
        if (num == 0) return y;
        if (num == 1) { y[0] = start; return y; }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[^1] = stop;
        return y;
    }

    /// <summary>
    /// np.arange(start, stop, step) for floats: length ceil((stop - start) / step); element 1 is start + step and
    /// element i ≥ 2 is start + i · ((start + step) - start), as numpy's fill does.
    /// </summary>
    public static double[] Arange(double start, double stop, double step)
    {
        if (step == 0) throw new ArgumentException("arange step must not be zero");
        double len = Math.Ceiling((stop - start) / step);
        int n = len > 0 ? checked((int)len) : 0;
        var y = new double[n];
        if (n == 0) return y;
        y[0] = start;
        if (n == 1) return y;
        y[1] = start + step;
        double delta = y[1] - y[0];
        for (int i = 2; i < n; i++) y[i] = start + i * delta;
        return y;
    }

    /// <summary>np.round / Python round: halves go to the even neighbour.</summary>
    public static double Round(double x) => Math.Round(x, MidpointRounding.ToEven);

    /// <summary>np.interp(x, arange(len(fp)), fp): linear interpolation on the integer grid, clamped at both ends.</summary>
    public static double InterpOnIndexGrid(double x, IReadOnlyList<double> fp)
    {
        int n = fp.Count;
        if (double.IsNaN(x)) return double.NaN;
        if (x <= 0) return fp[0];
        if (x >= n - 1) return fp[n - 1];
        int j = (int)Math.Floor(x);
        if (x == j) return fp[j];
        double slope = fp[j + 1] - fp[j];
        return slope * (x - j) + fp[j];
    }
}
