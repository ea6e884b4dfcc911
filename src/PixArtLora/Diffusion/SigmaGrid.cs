namespace PixArtLora.Diffusion;

/// <summary>
/// Noise levels (sigma = sqrt((1 - ac) / ac)) at the visited timesteps, and the alternative sigma spacings diffusers
/// offers (Karras, exponential, Lu lambdas), shared by the sigma-space samplers (DPM-Solver, SA-Solver, Euler).
/// </summary>
internal static class SigmaGrid
{
    /// <summary>Training sigmas linearly interpolated at (possibly fractional) timesteps, as np.interp does.</summary>
    public static double[] AtTimesteps(IEnumerable<double> timesteps, IReadOnlyList<double> trainSigmas) =>
        timesteps.Select(t => NumpyMath.InterpOnIndexGrid(t, trainSigmas)).ToArray();

    /// <summary>
    /// The fractional training timestep whose log-sigma matches (diffusers' _sigma_to_t): linear interpolation between
    /// the last training index whose log-sigma is ≤ log(sigma) and the next one.
    /// </summary>
    public static double SigmaToT(double sigma, IReadOnlyList<double> logSigmas)
    {
        double logSigma = Math.Log(Math.Max(sigma, 1e-10));
        int n = logSigmas.Count;
        // cumsum(dists >= 0).argmax(): the last index whose log-sigma is <= logSigma (0 when none is).
        int low = 0;
        for (int i = 0; i < n; i++) if (logSigma - logSigmas[i] >= 0) low = i;
        low = Math.Min(low, n - 2);
        double lo = logSigmas[low], hi = logSigmas[low + 1];
        double w = Math.Clamp((lo - logSigma) / (lo - hi), 0, 1);
        return (1 - w) * low + w * (low + 1);
    }

    /// <summary>Karras et al. (2022) eq. 5 with rho = 7: sigmas evenly spaced in sigma^(1/rho), from max down to min.</summary>
    public static double[] Karras(double sigmaMin, double sigmaMax, int steps, double rho = 7.0)
    {
        double minInv = Math.Pow(sigmaMin, 1 / rho), maxInv = Math.Pow(sigmaMax, 1 / rho);
        return NumpyMath.Linspace(0, 1, steps).Select(r => Math.Pow(maxInv + r * (minInv - maxInv), rho)).ToArray();
    }

    /// <summary>Sigmas evenly spaced in log sigma, from max down to min.</summary>
    public static double[] Exponential(double sigmaMin, double sigmaMax, int steps) =>
        NumpyMath.Linspace(Math.Log(sigmaMax), Math.Log(sigmaMin), steps).Select(Math.Exp).ToArray();

    /// <summary>Lu et al. (DPM-Solver++) uniform-lambda spacing: log-sigmas evenly spaced between the given ends.</summary>
    public static double[] LuLambdas(double lambdaMin, double lambdaMax, int steps) =>
        NumpyMath.Linspace(0, 1, steps).Select(r => Math.Exp(lambdaMax + r * (lambdaMin - lambdaMax))).ToArray();

    /// <summary>
    /// The multistep solvers' lambda_min_clipped: the number of leading training timesteps to sample from, dropping
    /// the noisy tail whose half-log-SNR log(sqrt(ac)) - log(sqrt(1 - ac)) is below <paramref name="lambdaMin"/>
    /// (diffusers' searchsorted on the flipped, ascending lambda array).
    /// </summary>
    public static int LastTimestepAbove(NoiseSchedule schedule, double lambdaMin)
    {
        var ac = schedule.AlphasCumprod;
        int clipped = 0;
        for (int k = ac.Count - 1; k >= 0; k--)
        {
            if (Math.Log(Math.Sqrt(ac[k])) - Math.Log(Math.Sqrt(1 - ac[k])) >= lambdaMin) break;
            clipped++;
        }
        return ac.Count - clipped;
    }

    /// <summary>(alpha_t, sigma_t) of the variance-preserving process with noise level sigma: 1/sqrt(σ²+1), σ/sqrt(σ²+1).</summary>
    public static (double Alpha, double Sigma) AlphaSigma(double sigma)
    {
        double alpha = 1 / Math.Sqrt(sigma * sigma + 1);
        return (alpha, sigma * alpha);
    }

    /// <summary>Half log-SNR lambda = log(alpha_t) - log(sigma_t) at noise level sigma (+∞ at sigma = 0).</summary>
    public static double Lambda(double sigma)
    {
        var (a, s) = AlphaSigma(sigma);
        return Math.Log(a) - Math.Log(s);
    }
}
