using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// SA-Solver (Xue et al. 2023, "SA-Solver: Stochastic Adams Solver for Fast Sampling of Diffusion Models"), after
/// diffusers' SASolverScheduler (v0.31): a stochastic Adams–Bashforth predictor and Adams–Moulton corrector in the
/// half-log-SNR variable lambda, with noise scale tau(t) (default 1 for 200 ≤ t ≤ 800, else 0). PixArt-Σ suggests
/// algorithm_type data_prediction with predictor and corrector order 2. Draws noise at every step.
/// </summary>
public sealed class SaSolverSampler : SamplerBase
{
    readonly double[] _sigmas;           // N + 1 noise levels; the last is sigma_min
    readonly double[] _timesteps;
    readonly int _predictorOrder, _correctorOrder, _historySize;
    readonly bool _predictX0, _lowerOrderFinal;
    readonly ModelOutputConversion _conversion;
    readonly Func<double, double> _tau;
    readonly Tensor?[] _outputs;         // converted model outputs, oldest first
    readonly double[] _outputTimesteps;
    Tensor? _lastSample, _lastNoise;
    int _lowerOrderSteps, _thisCorrectorOrder;

    /// <summary>diffusers' default tau: full stochasticity in the middle of the trajectory, none at its ends.</summary>
    public static double DefaultTau(double timestep) => timestep >= 200 && timestep <= 800 ? 1 : 0;

    /// <inheritdoc/>
    public override IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>The N + 1 noise levels (float64).</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;

    /// <summary>
    /// Builds the sampler for <paramref name="steps"/> steps from a diffusers scheduler config (null: defaults).
    /// DPM-Solver's algorithm names in a shared config (PixArt ships a DPM-Solver config) are ignored in favour of
    /// data_prediction, where diffusers would refuse the config.
    /// </summary>
    public SaSolverSampler(int steps, SchedulerConfig? config = null, Func<double, double>? tau = null)
        : base("sa-solver", NoiseSchedule.FromConfig(config), steps)
    {
        config ??= SchedulerConfig.Empty;
        string? algo = config.AlgorithmType is "data_prediction" or "noise_prediction" ? config.AlgorithmType : null;
        _predictX0 = (algo ?? "data_prediction") == "data_prediction";
        _conversion = ModelOutputConversion.From(config, config.Choose("prediction_type", config.PredictionType, "epsilon", Prediction.Types));
        _predictorOrder = config.PredictorOrder ?? 2;
        _correctorOrder = config.CorrectorOrder ?? 2;
        if (_predictorOrder is < 1 or > 4) throw config.Invalid("predictor_order", _predictorOrder.ToString(), "1 to 4");
        if (_correctorOrder is < 1 or > 4) throw config.Invalid("corrector_order", _correctorOrder.ToString(), "1 to 4");
        _lowerOrderFinal = config.LowerOrderFinal ?? true;
        _tau = tau ?? DefaultTau;
        if (config.UseExponentialSigmas == true || config.UseBetaSigmas == true)
            throw config.Invalid(config.UseBetaSigmas == true ? "use_beta_sigmas" : "use_exponential_sigmas", "true",
                                 "false for SA-Solver (diffusers 0.31 cannot run it either)");
        _historySize = Math.Max(_predictorOrder, _correctorOrder - 1);
        _outputs = new Tensor?[_historySize];
        _outputTimesteps = new double[_historySize];

        var trainSigmas = Schedule.Sigmas();
        var logSigmas = trainSigmas.Select(x => Math.Log(x)).ToArray();
        int lastTimestep = SigmaGrid.LastTimestepAbove(Schedule, config.LambdaMinClipped ?? double.NegativeInfinity);
        string spacing = config.Choose("timestep_spacing", config.TimestepSpacing, "linspace", TimestepGrid.Spacings);
        _timesteps = TimestepGrid.Multistep(spacing, Schedule.TrainTimesteps, lastTimestep, steps, config.StepsOffset ?? 0)
            .Select(t => (double)t).ToArray();
        if (config.UseKarrasSigmas == true)
        {
            var sigmas = SigmaGrid.Karras(trainSigmas[0], trainSigmas[^1], steps);
            _timesteps = sigmas.Select(s => NumpyMath.Round(SigmaGrid.SigmaToT(s, logSigmas))).ToArray();
            // diffusers repeats the last Karras sigma here instead of appending sigma_min.
            _sigmas = sigmas.Append(sigmas[^1]).ToArray();
        }
        else _sigmas = SigmaGrid.AtTimesteps(_timesteps, trainSigmas).Append(trainSigmas[0]).ToArray();
    }

    /// <inheritdoc/>
    protected override void ResetState()
    {
        Array.Clear(_outputs);
        Array.Clear(_outputTimesteps);
        _lastSample = _lastNoise = null;
        _lowerOrderSteps = 0;
        _thisCorrectorOrder = 0;
    }

    /// <inheritdoc/>
    protected override Tensor StepCore(Tensor modelOutput, int i, Tensor sample, NoiseSource? noise)
    {
        var converted = ConvertModelOutput(modelOutput, sample, i);
        if (i > 0 && _lastSample is not null)
            sample = Corrector(converted, i, _thisCorrectorOrder, _tau(_outputTimesteps[^1]));

        Release(_outputs[0]);
        for (int k = 0; k < _historySize - 1; k++)
        {
            _outputs[k] = _outputs[k + 1];
            _outputTimesteps[k] = _outputTimesteps[k + 1];
        }
        _outputs[^1] = Keep(converted);
        _outputTimesteps[^1] = _timesteps[i];

        var z = DrawNoise(noise, sample);
        int n = StepCount;
        int predictorOrder = _lowerOrderFinal ? Math.Min(_predictorOrder, n - i) : _predictorOrder;
        int correctorOrder = _lowerOrderFinal ? Math.Min(_correctorOrder, n - i + 1) : _correctorOrder;
        predictorOrder = Math.Min(predictorOrder, _lowerOrderSteps + 1);   // warm-up of the multistep history
        _thisCorrectorOrder = Math.Min(correctorOrder, _lowerOrderSteps + 2);

        Release(_lastSample);
        Release(_lastNoise);
        _lastSample = Keep(sample);
        _lastNoise = Keep(z);
        var prev = Predictor(i, sample, z, predictorOrder, _tau(_outputTimesteps[^1]));
        if (_lowerOrderSteps < _historySize) _lowerOrderSteps++;
        return prev;
    }

    Tensor ConvertModelOutput(Tensor output, Tensor sample, int i)
    {
        var (alpha, sigma) = SigmaGrid.AlphaSigma(_sigmas[i]);
        return _conversion.Convert(output, sample, alpha, sigma, toX0: _predictX0);
    }

    /// <summary>Stochastic Adams–Bashforth: from x at sigma_i to sigma_{i+1} using the last <paramref name="order"/> outputs.</summary>
    Tensor Predictor(int i, Tensor x, Tensor z, int order, double tau)
    {
        double lambdaT = SigmaGrid.Lambda(_sigmas[i + 1]), lambdaS0 = SigmaGrid.Lambda(_sigmas[i]);
        double h = lambdaT - lambdaS0, s2 = 1 + tau * tau;
        var coefficients = Coefficients(order, lambdaS0, lambdaT, Enumerable.Range(0, order).Select(k => SigmaGrid.Lambda(_sigmas[i - k])).ToArray(), tau);
        if (_predictX0 && order == 2)
        {
            // diffusers' UniPC-like adjustment for few-step sampling; it does not change the convergence order.
            double lambdaPrev = SigmaGrid.Lambda(_sigmas[i - 1]);
            double c = Math.Exp(s2 * lambdaT) * (h * h / 2 - (h * s2 - 1 + Math.Exp(s2 * -h)) / (s2 * s2)) / (lambdaS0 - lambdaPrev);
            coefficients[0] += c;
            coefficients[1] -= c;
        }
        var history = Enumerable.Range(0, order).Select(k => _outputs[_historySize - 1 - k]!).ToArray();
        return Combine(i + 1, i, x, z, history, coefficients, h, tau);
    }

    /// <summary>Stochastic Adams–Moulton: redoes the last step from the previous sample, now including this step's output.</summary>
    Tensor Corrector(Tensor current, int i, int order, double tau)
    {
        double lambdaT = SigmaGrid.Lambda(_sigmas[i]), lambdaS0 = SigmaGrid.Lambda(_sigmas[i - 1]);
        double h = lambdaT - lambdaS0, s2 = 1 + tau * tau;
        var coefficients = Coefficients(order, lambdaS0, lambdaT, Enumerable.Range(0, order).Select(k => SigmaGrid.Lambda(_sigmas[i - k])).ToArray(), tau);
        if (_predictX0 && order == 2)
        {
            double c = Math.Exp(s2 * lambdaT) * (h / 2 - (h * s2 - 1 + Math.Exp(s2 * -h)) / (s2 * s2 * h));
            coefficients[0] += c;
            coefficients[1] -= c;
        }
        // The newest output first, then the history (newest to oldest).
        var history = new[] { current }.Concat(Enumerable.Range(0, order - 1).Select(k => _outputs[_historySize - 1 - k]!)).ToArray();
        return Combine(i, i - 1, _lastSample!, _lastNoise!, history, coefficients, h, tau);
    }

    /// <summary>x at sigma[to] from x at sigma[from]: the decayed sample, the weighted outputs and the noise term.</summary>
    Tensor Combine(int to, int from, Tensor x, Tensor z, Tensor[] outputs, double[] coefficients, double h, double tau)
    {
        var (alphaT, sigmaT) = SigmaGrid.AlphaSigma(_sigmas[to]);
        var (alphaS0, sigmaS0) = SigmaGrid.AlphaSigma(_sigmas[from]);
        double lambdaT = Math.Log(alphaT) - Math.Log(sigmaT), s2 = 1 + tau * tau;
        Tensor result;
        if (_predictX0)
        {
            result = (Math.Exp(-(tau * tau) * h) * (sigmaT / sigmaS0)) * x;
            for (int k = 0; k < outputs.Length; k++)
                result = result + (s2 * sigmaT * Math.Exp(-(tau * tau) * lambdaT) * coefficients[k]) * outputs[k];
            return result + (sigmaT * Math.Sqrt(1 - Math.Exp(-2 * tau * tau * h))) * z;
        }
        result = (alphaT / alphaS0) * x;
        for (int k = 0; k < outputs.Length; k++)
            result = result + (-s2 * alphaT * coefficients[k]) * outputs[k];
        return result + (tau * sigmaT * Math.Sqrt(Math.Exp(2 * h) - 1)) * z;
    }

    /// <summary>
    /// Weights of the <paramref name="order"/> outputs: the integral over [start, end] of the exponential kernel times
    /// each output's Lagrange basis polynomial through <paramref name="lambdas"/> (diffusers' get_coefficients_fn).
    /// </summary>
    double[] Coefficients(int order, double start, double end, double[] lambdas, double tau)
    {
        var result = new double[order];
        for (int i = 0; i < order; i++)
        {
            var basis = LagrangeBasis(lambdas, i);   // highest power first
            for (int j = 0; j < order; j++)
                result[i] += basis[j] * (_predictX0 ? KernelMomentPositive(order - 1 - j, start, end, tau) : KernelMomentNegative(order - 1 - j, start, end));
        }
        return result;
    }

    /// <summary>Polynomial coefficients (highest power first) of the i-th Lagrange basis polynomial through the points.</summary>
    internal static double[] LagrangeBasis(IReadOnlyList<double> points, int i)
    {
        var poly = new List<double> { 1.0 };
        double denominator = 1;
        for (int m = 0; m < points.Count; m++)
        {
            if (m == i) continue;
            var next = new double[poly.Count + 1];
            for (int k = 0; k < poly.Count; k++) { next[k] += poly[k]; next[k + 1] -= poly[k] * points[m]; }
            poly = next.ToList();
            denominator *= points[i] - points[m];
        }
        return poly.Select(c => c / denominator).ToArray();
    }

    /// <summary>∫_start^end exp((1+τ²)λ) λ^k dλ for k = 0..3, the data-prediction kernel.</summary>
    internal static double KernelMomentPositive(int k, double start, double end, double tau)
    {
        double s2 = 1 + tau * tau, e = s2 * end, s = s2 * start, decay = Math.Exp(-(e - s));
        return k switch
        {
            0 => Math.Exp(e) * (1 - decay) / s2,
            1 => Math.Exp(e) * ((e - 1) - (s - 1) * decay) / (s2 * s2),
            2 => Math.Exp(e) * ((e * e - 2 * e + 2) - (s * s - 2 * s + 2) * decay) / Math.Pow(s2, 3),
            3 => Math.Exp(e) * ((e * e * e - 3 * e * e + 6 * e - 6) - (s * s * s - 3 * s * s + 6 * s - 6) * decay) / Math.Pow(s2, 4),
            _ => throw new ArgumentOutOfRangeException(nameof(k), k, "SA-Solver kernels exist for orders 0..3"),
        };
    }

    /// <summary>∫_start^end exp(-λ) λ^k dλ for k = 0..3, the noise-prediction kernel.</summary>
    internal static double KernelMomentNegative(int k, double start, double end)
    {
        double g = Math.Exp(end - start);
        return k switch
        {
            0 => Math.Exp(-end) * (g - 1),
            1 => Math.Exp(-end) * ((start + 1) * g - (end + 1)),
            2 => Math.Exp(-end) * ((start * start + 2 * start + 2) * g - (end * end + 2 * end + 2)),
            3 => Math.Exp(-end) * ((start * start * start + 3 * start * start + 6 * start + 6) * g - (end * end * end + 3 * end * end + 6 * end + 6)),
            _ => throw new ArgumentOutOfRangeException(nameof(k), k, "SA-Solver kernels exist for orders 0..3"),
        };
    }
}
