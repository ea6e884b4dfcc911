using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// The discrete forward process q(x_t | x_0) shared by every sampler and training objective: betas and
/// alphas_cumprod over the training timesteps, held in float64 (PixArt builds its schedule with numpy
/// float64; diffusers uses float32, which differs by ~1e-7 relative). Each formula derived from the
/// schedule (posterior coefficients, sigmas, SNR) is written once here.
/// </summary>
public sealed class NoiseSchedule
{
    readonly double[] _betas;
    readonly double[] _alphasCumprod;

    /// <summary>beta_t for t = 0 .. T-1.</summary>
    public IReadOnlyList<double> Betas => _betas;

    /// <summary>alphas_cumprod[t] = prod_{s &lt;= t} (1 - beta_s).</summary>
    public IReadOnlyList<double> AlphasCumprod => _alphasCumprod;

    /// <summary>Number of training timesteps T.</summary>
    public int TrainTimesteps => _betas.Length;

    NoiseSchedule(double[] betas, double[]? alphasCumprod = null)
    {
        if (betas.Length == 0) throw new ArgumentException("a noise schedule needs at least one timestep");
        for (int i = 0; i < betas.Length; i++)
            if (!(betas[i] > 0 && betas[i] <= 1))
                throw new ArgumentException($"beta[{i}] = {betas[i]} is outside (0, 1]");
        _betas = betas;
        _alphasCumprod = alphasCumprod ?? CumulativeAlphas(betas);
    }

    static double[] CumulativeAlphas(double[] betas)
    {
        var ac = new double[betas.Length];
        double p = 1;
        for (int i = 0; i < betas.Length; i++) { p *= 1 - betas[i]; ac[i] = p; }
        return ac;
    }

    /// <summary>The PixArt / diffusers default: betas evenly spaced from 1e-4 to 0.02 over 1000 steps.</summary>
    public static NoiseSchedule PixArtDefault() => Linear(1e-4, 0.02, 1000);

    /// <summary>Betas evenly spaced from <paramref name="betaStart"/> to <paramref name="betaEnd"/> (numpy linspace).</summary>
    public static NoiseSchedule Linear(double betaStart, double betaEnd, int trainTimesteps) =>
        new(NumpyMath.Linspace(betaStart, betaEnd, trainTimesteps));

    /// <summary>
    /// IDDPM's named "linear" schedule for T steps (get_named_beta_schedule): the 1000-step range scaled by 1000 / T,
    /// so T = 1000 gives <see cref="PixArtDefault"/>.
    /// </summary>
    public static NoiseSchedule IddpmLinear(int trainTimesteps)
    {
        double scale = 1000.0 / trainTimesteps;
        return Linear(scale * 0.0001, scale * 0.02, trainTimesteps);
    }

    /// <summary>Stable Diffusion's schedule: square roots evenly spaced, then squared.</summary>
    public static NoiseSchedule ScaledLinear(double betaStart, double betaEnd, int trainTimesteps) =>
        new(NumpyMath.Linspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), trainTimesteps).Select(b => b * b).ToArray());

    /// <summary>
    /// The cosine schedule of Nichol &amp; Dhariwal ("squaredcos_cap_v2"): alpha_bar(t) = cos²((t + 0.008) / 1.008 · π/2),
    /// beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), <paramref name="maxBeta"/>).
    /// </summary>
    public static NoiseSchedule SquaredCosCapV2(int trainTimesteps, double maxBeta = 0.999)
    {
        static double AlphaBar(double t) { double c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2); return c * c; }
        var betas = new double[trainTimesteps];
        for (int i = 0; i < trainTimesteps; i++)
            betas[i] = Math.Min(1 - AlphaBar((i + 1.0) / trainTimesteps) / AlphaBar((double)i / trainTimesteps), maxBeta);
        return new NoiseSchedule(betas);
    }

    /// <summary>A schedule from explicit betas (diffusers' <c>trained_betas</c>).</summary>
    public static NoiseSchedule FromBetas(IEnumerable<double> betas) => new(betas.ToArray());

    /// <summary>
    /// Rescales the schedule so the last timestep has zero SNR (Lin et al. 2023, "Common Diffusion Noise Schedules
    /// and Sample Steps are Flawed"): sqrt(alphas_cumprod) is shifted and scaled to end at 0 and keep its start.
    /// The last alphas_cumprod is then exactly 0; diffusers' DPM-Solver and Euler replace it by 2^-24 themselves.
    /// </summary>
    public NoiseSchedule RescaledToZeroTerminalSnr()
    {
        int n = TrainTimesteps;
        var sqrtAc = _alphasCumprod.Select(Math.Sqrt).ToArray();
        double first = sqrtAc[0], last = sqrtAc[n - 1];
        var acBar = sqrtAc.Select(s => { double v = (s - last) * first / (first - last); return v * v; }).ToArray();
        var betas = new double[n];
        betas[0] = 1 - acBar[0];
        for (int i = 1; i < n; i++) betas[i] = 1 - acBar[i] / acBar[i - 1];
        // The last beta is exactly 1 (alpha = 0), which the constructor's (0, 1] check allows.
        return new NoiseSchedule(betas);
    }

    /// <summary>
    /// The schedule of a process that only visits <paramref name="keptTimesteps"/> (ascending original timesteps),
    /// as IDDPM's SpacedDiffusion builds it: beta'_k = 1 - alphas_cumprod[m_k] / alphas_cumprod[m_{k-1}].
    /// </summary>
    public NoiseSchedule Respaced(IReadOnlyList<int> keptTimesteps)
    {
        var betas = new double[keptTimesteps.Count];
        double last = 1;
        int previous = -1;
        for (int k = 0; k < keptTimesteps.Count; k++)
        {
            int m = keptTimesteps[k];
            if (m <= previous || m >= TrainTimesteps)
                throw new ArgumentException($"respaced timesteps must be ascending and within [0, {TrainTimesteps}); got {m} after {previous}");
            betas[k] = 1 - _alphasCumprod[m] / last;
            last = _alphasCumprod[m];
            previous = m;
        }
        return new NoiseSchedule(betas);
    }

    /// <summary>
    /// Coefficients of the posterior q(x_prev | x_t, x_0) between two points of the process with cumulative alphas
    /// <paramref name="alphaCumprodT"/> and <paramref name="alphaCumprodPrev"/> (1 for "before the first step"):
    /// mean = CoefX0 · x_0 + CoefXt · x_t, variance = Variance. Used by DDPM, DDIM and the IDDPM arrays.
    /// </summary>
    public static (double CoefX0, double CoefXt, double Variance) Posterior(double alphaCumprodT, double alphaCumprodPrev)
    {
        double alphaT = alphaCumprodT / alphaCumprodPrev;
        double betaT = 1 - alphaT;
        double oneMinusT = 1 - alphaCumprodT, oneMinusPrev = 1 - alphaCumprodPrev;
        return (Math.Sqrt(alphaCumprodPrev) * betaT / oneMinusT,
                Math.Sqrt(alphaT) * oneMinusPrev / oneMinusT,
                oneMinusPrev / oneMinusT * betaT);
    }

    /// <summary>Karras-style noise level sigma_t = sqrt((1 - alphas_cumprod) / alphas_cumprod), ascending in t.</summary>
    public double[] Sigmas() => _alphasCumprod.Select(a => Math.Sqrt((1 - a) / a)).ToArray();

    /// <summary>Signal-to-noise ratio alphas_cumprod / (1 - alphas_cumprod) at timestep t.</summary>
    public double Snr(int t) => _alphasCumprod[t] / (1 - _alphasCumprod[t]);

    /// <summary>
    /// Gathers <paramref name="values"/>[t] for each batch row of <paramref name="timesteps"/> (int64, [B]) and shapes it
    /// [B, 1, 1, ...] to broadcast against <paramref name="like"/>; the float64 value is cast to like's dtype, as
    /// IDDPM's _extract_into_tensor does.
    /// </summary>
    public static Tensor Gather(IReadOnlyList<double> values, Tensor timesteps, Tensor like)
    {
        using var scope = NewDisposeScope();
        var table = tensor(values as double[] ?? values.ToArray(), float64, timesteps.device);
        var picked = table.index_select(0, timesteps.to(int64).flatten()).to(like.dtype);
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = picked.shape[0];
        return picked.reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Forward noising x_t = sqrt(ac[t]) · x_0 + sqrt(1 - ac[t]) · noise, one timestep per batch row
    /// (diffusers add_noise, IDDPM q_sample).
    /// </summary>
    public Tensor AddNoise(Tensor original, Tensor noise, Tensor timesteps)
    {
        CheckTimesteps(timesteps, original);
        using var scope = NewDisposeScope();
        var a = Gather(_alphasCumprod.Select(Math.Sqrt).ToArray(), timesteps, original);
        var s = Gather(_alphasCumprod.Select(x => Math.Sqrt(1 - x)).ToArray(), timesteps, original);
        return (a * original + s * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The v-prediction target sqrt(ac[t]) · noise - sqrt(1 - ac[t]) · x_0 (Salimans &amp; Ho 2022).</summary>
    public Tensor Velocity(Tensor original, Tensor noise, Tensor timesteps)
    {
        CheckTimesteps(timesteps, original);
        using var scope = NewDisposeScope();
        var a = Gather(_alphasCumprod.Select(Math.Sqrt).ToArray(), timesteps, original);
        var s = Gather(_alphasCumprod.Select(x => Math.Sqrt(1 - x)).ToArray(), timesteps, original);
        return (a * noise - s * original).MoveToOuterDisposeScope();
    }

    internal void CheckTimesteps(Tensor timesteps, Tensor batch)
    {
        if (timesteps.dim() != 1 || timesteps.shape[0] != batch.shape[0])
            throw new ArgumentException($"timesteps must be a [B] tensor with B = {batch.shape[0]}; got shape [{string.Join(", ", timesteps.shape)}]");
        if (timesteps.numel() == 0) return;
        long min = timesteps.min().item<long>(), max = timesteps.max().item<long>();
        if (min < 0 || max >= TrainTimesteps)
            throw new ArgumentException($"timesteps must lie in [0, {TrainTimesteps - 1}]; got values from {min} to {max}");
    }

    /// <summary>
    /// The schedule a diffusers scheduler config describes (beta_schedule, beta_start, beta_end, num_train_timesteps,
    /// trained_betas, rescale_betas_zero_snr); missing keys take diffusers' defaults (linear 1e-4 → 0.02 over 1000).
    /// </summary>
    public static NoiseSchedule FromConfig(SchedulerConfig? config)
    {
        config ??= SchedulerConfig.Empty;
        int t = config.NumTrainTimesteps ?? 1000;
        if (t <= 0) throw config.Invalid("num_train_timesteps", t.ToString(), "a positive integer");
        double start = config.BetaStart ?? 1e-4, end = config.BetaEnd ?? 0.02;
        NoiseSchedule schedule;
        if (config.TrainedBetas is { Length: > 0 } trained)
            schedule = FromBetas(trained);
        else
            schedule = config.Choose("beta_schedule", config.BetaSchedule, "linear", "linear", "scaled_linear", "squaredcos_cap_v2") switch
            {
                "linear" => Linear(start, end, t),
                "scaled_linear" => ScaledLinear(start, end, t),
                _ => SquaredCosCapV2(t),
            };
        return config.RescaleBetasZeroSnr == true ? schedule.RescaledToZeroTerminalSnr() : schedule;
    }

    /// <summary>
    /// The same betas with the last alphas_cumprod replaced: diffusers' DPM-Solver and Euler set it to 2^-24 after a
    /// zero-terminal-SNR rescale so that sigma stays finite.
    /// </summary>
    internal NoiseSchedule WithLastAlphaCumprod(double value)
    {
        var ac = (double[])_alphasCumprod.Clone();
        ac[^1] = value;
        return new NoiseSchedule(_betas, ac);
    }
}
