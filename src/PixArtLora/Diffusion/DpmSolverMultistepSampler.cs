using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// DPM-Solver / DPM-Solver++ multistep (Lu et al. 2022), after diffusers' DPMSolverMultistepScheduler (v0.31): the
/// PixArt pipelines' default, order 2 "midpoint" in data (x_0) prediction. Orders 1–3, algorithm types
/// dpmsolver++, dpmsolver, sde-dpmsolver++ and sde-dpmsolver, Karras and Lu-lambda sigma spacings. All schedule
/// coefficients are computed in float64.
/// </summary>
public sealed class DpmSolverMultistepSampler : SamplerBase
{
    static readonly string[] Algorithms = { "dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver" };

    readonly double[] _sigmas;           // N + 1 noise levels; the last is 0 or sigma_min
    readonly double[] _timesteps;
    readonly string _algorithm, _solverType;
    readonly int _order;
    readonly bool _lowerOrderFinal, _eulerAtFinal, _finalSigmaZero;
    readonly ModelOutputConversion _conversion;
    readonly Tensor?[] _history;         // converted model outputs of the last `order` steps, oldest first
    int _lowerOrderSteps;

    /// <inheritdoc/>
    public override IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>The N + 1 noise levels sigma_i (float64), the last being the final level.</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;

    /// <summary>Builds the sampler for <paramref name="steps"/> steps from a diffusers scheduler config (null: PixArt defaults).</summary>
    public DpmSolverMultistepSampler(int steps, SchedulerConfig? config = null, string name = "dpm-solver")
        : base(name, ScheduleFor(config), steps)
    {
        config ??= SchedulerConfig.Empty;
        // diffusers maps "deis" to dpmsolver++; SA-Solver's algorithm names belong to another scheduler's config.
        string? algo = config.AlgorithmType is "deis" or "data_prediction" or "noise_prediction" ? null : config.AlgorithmType;
        _algorithm = config.Choose("algorithm_type", algo, "dpmsolver++", Algorithms);
        string? solver = config.SolverType is "logrho" or "bh1" or "bh2" ? "midpoint" : config.SolverType;
        _solverType = config.Choose("solver_type", solver, "midpoint", "midpoint", "heun");
        _conversion = ModelOutputConversion.From(config, config.Choose("prediction_type", config.PredictionType, "epsilon", Prediction.Types));
        _order = config.SolverOrder ?? 2;
        if (_order is < 1 or > 3) throw config.Invalid("solver_order", _order.ToString(), "1, 2 or 3");
        if (_order == 3 && _algorithm.StartsWith("sde", StringComparison.Ordinal))
            throw config.Invalid("solver_order", "3", $"1 or 2 with algorithm_type {_algorithm}");
        _lowerOrderFinal = config.LowerOrderFinal ?? true;
        _eulerAtFinal = config.EulerAtFinal ?? false;
        _finalSigmaZero = config.Choose("final_sigmas_type", config.FinalSigmasType, "zero", "zero", "sigma_min") == "zero";
        if (_finalSigmaZero && !_algorithm.EndsWith("++", StringComparison.Ordinal))
            throw config.Invalid("final_sigmas_type", "zero", $"sigma_min with algorithm_type {_algorithm}");
        if (config.UseExponentialSigmas == true || config.UseBetaSigmas == true)
            throw config.Invalid(config.UseBetaSigmas == true ? "use_beta_sigmas" : "use_exponential_sigmas", "true",
                                 "false for DPM-Solver (diffusers 0.31 cannot run it either); use_karras_sigmas or use_lu_lambdas instead");
        _history = new Tensor?[_order];
        (_timesteps, _sigmas) = BuildGrid(config, steps);
    }

    static NoiseSchedule ScheduleFor(SchedulerConfig? config)
    {
        var s = NoiseSchedule.FromConfig(config);
        // diffusers keeps sigma finite after a zero-terminal-SNR rescale by setting the last alphas_cumprod to 2^-24.
        return config?.RescaleBetasZeroSnr == true ? s.WithLastAlphaCumprod(Math.Pow(2, -24)) : s;
    }

    (double[] Timesteps, double[] Sigmas) BuildGrid(SchedulerConfig config, int steps)
    {
        int trainSteps = Schedule.TrainTimesteps;
        var trainSigmas = Schedule.Sigmas();
        var logSigmas = trainSigmas.Select(x => Math.Log(x)).ToArray();

        int lastTimestep = SigmaGrid.LastTimestepAbove(Schedule, config.LambdaMinClipped ?? double.NegativeInfinity);
        string spacing = config.Choose("timestep_spacing", config.TimestepSpacing, "linspace", TimestepGrid.Spacings);
        double[] timesteps = TimestepGrid.Multistep(spacing, trainSteps, lastTimestep, steps, config.StepsOffset ?? 0)
            .Select(t => (double)t).ToArray();

        double[] sigmas;
        if (config.UseKarrasSigmas == true)
        {
            sigmas = SigmaGrid.Karras(trainSigmas[0], trainSigmas[^1], steps);
            timesteps = sigmas.Select(s => NumpyMath.Round(SigmaGrid.SigmaToT(s, logSigmas))).ToArray();
        }
        else if (config.UseLuLambdas == true)
        {
            sigmas = SigmaGrid.LuLambdas(logSigmas[0], logSigmas[^1], steps);
            timesteps = sigmas.Select(s => NumpyMath.Round(SigmaGrid.SigmaToT(s, logSigmas))).ToArray();
        }
        else sigmas = SigmaGrid.AtTimesteps(timesteps, trainSigmas);

        double last = _finalSigmaZero ? 0 : trainSigmas[0];
        return (timesteps, sigmas.Append(last).ToArray());
    }

    /// <inheritdoc/>
    protected override void ResetState()
    {
        Array.Clear(_history);
        _lowerOrderSteps = 0;
    }

    /// <inheritdoc/>
    protected override Tensor StepCore(Tensor modelOutput, int i, Tensor sample, NoiseSource? noise)
    {
        int n = StepCount;
        bool lowerOrderFinal = i == n - 1 && (_eulerAtFinal || (_lowerOrderFinal && n < 15) || _finalSigmaZero);
        bool lowerOrderSecond = i == n - 2 && _lowerOrderFinal && n < 15;

        var converted = ConvertModelOutput(modelOutput, sample, i);
        Release(_history[0]);
        for (int k = 0; k < _order - 1; k++) _history[k] = _history[k + 1];
        _history[^1] = Keep(converted);

        Tensor? z = _algorithm.StartsWith("sde", StringComparison.Ordinal) ? DrawNoise(noise, sample) : null;
        Tensor prev;
        if (_order == 1 || _lowerOrderSteps < 1 || lowerOrderFinal) prev = FirstOrder(converted, i, sample, z);
        else if (_order == 2 || _lowerOrderSteps < 2 || lowerOrderSecond) prev = SecondOrder(i, sample, z);
        else prev = ThirdOrder(i, sample);
        if (_lowerOrderSteps < _order) _lowerOrderSteps++;
        return prev;
    }

    /// <summary>x_0 (for the ++ algorithms) or eps (for the others), as diffusers' convert_model_output.</summary>
    Tensor ConvertModelOutput(Tensor output, Tensor sample, int i)
    {
        var (alpha, sigma) = SigmaGrid.AlphaSigma(_sigmas[i]);
        return _conversion.Convert(output, sample, alpha, sigma, toX0: _algorithm.EndsWith("++", StringComparison.Ordinal));
    }

    (double Alpha, double Sigma, double Lambda) Point(int index)
    {
        var (a, s) = SigmaGrid.AlphaSigma(_sigmas[index]);
        return (a, s, Math.Log(a) - Math.Log(s));
    }

    Tensor FirstOrder(Tensor m, int i, Tensor x, Tensor? z)
    {
        var (at, st, lt) = Point(i + 1);
        var (as0, ss0, ls0) = Point(i);
        double h = lt - ls0;
        return _algorithm switch
        {
            "dpmsolver++" => (st / ss0) * x - (at * (Math.Exp(-h) - 1.0)) * m,
            "dpmsolver" => (at / as0) * x - (st * (Math.Exp(h) - 1.0)) * m,
            "sde-dpmsolver++" => (st / ss0 * Math.Exp(-h)) * x + (at * (1 - Math.Exp(-2.0 * h))) * m
                                 + (st * Math.Sqrt(1.0 - Math.Exp(-2 * h))) * z!,
            _ => (at / as0) * x - (2.0 * (st * (Math.Exp(h) - 1.0))) * m + (st * Math.Sqrt(Math.Exp(2 * h) - 1.0)) * z!,
        };
    }

    Tensor SecondOrder(int i, Tensor x, Tensor? z)
    {
        var (at, st, lt) = Point(i + 1);
        var (as0, ss0, ls0) = Point(i);
        var (_, _, ls1) = Point(i - 1);
        Tensor m0 = _history[^1]!, m1 = _history[^2]!;
        double h = lt - ls0, h0 = ls0 - ls1, r0 = h0 / h;
        var d0 = m0;
        var d1 = (1.0 / r0) * (m0 - m1);
        bool midpoint = _solverType == "midpoint";
        switch (_algorithm)
        {
            case "dpmsolver++":
            {
                double c = at * (Math.Exp(-h) - 1.0);
                var x_t = (st / ss0) * x - c * d0;
                return midpoint ? x_t - (0.5 * c) * d1 : x_t + (at * ((Math.Exp(-h) - 1.0) / h + 1.0)) * d1;
            }
            case "dpmsolver":
            {
                double c = st * (Math.Exp(h) - 1.0);
                var x_t = (at / as0) * x - c * d0;
                return midpoint ? x_t - (0.5 * c) * d1 : x_t - (st * ((Math.Exp(h) - 1.0) / h - 1.0)) * d1;
            }
            case "sde-dpmsolver++":
            {
                double c = at * (1 - Math.Exp(-2.0 * h));
                var x_t = (st / ss0 * Math.Exp(-h)) * x + c * d0;
                x_t = midpoint ? x_t + (0.5 * c) * d1 : x_t + (at * ((1.0 - Math.Exp(-2.0 * h)) / (-2.0 * h) + 1.0)) * d1;
                return x_t + (st * Math.Sqrt(1.0 - Math.Exp(-2 * h))) * z!;
            }
            default:
            {
                double c = st * (Math.Exp(h) - 1.0);
                var x_t = (at / as0) * x - (2.0 * c) * d0;
                x_t = midpoint ? x_t - c * d1 : x_t - (2.0 * (st * ((Math.Exp(h) - 1.0) / h - 1.0))) * d1;
                return x_t + (st * Math.Sqrt(Math.Exp(2 * h) - 1.0)) * z!;
            }
        }
    }

    Tensor ThirdOrder(int i, Tensor x)
    {
        var (at, st, lt) = Point(i + 1);
        var (as0, ss0, ls0) = Point(i);
        var (_, _, ls1) = Point(i - 1);
        var (_, _, ls2) = Point(i - 2);
        Tensor m0 = _history[^1]!, m1 = _history[^2]!, m2 = _history[^3]!;
        double h = lt - ls0, h0 = ls0 - ls1, h1 = ls1 - ls2, r0 = h0 / h, r1 = h1 / h;
        var d1_0 = (1.0 / r0) * (m0 - m1);
        var d1_1 = (1.0 / r1) * (m1 - m2);
        var d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1);
        var d2 = (1.0 / (r0 + r1)) * (d1_0 - d1_1);
        if (_algorithm == "dpmsolver++")
            return (st / ss0) * x - (at * (Math.Exp(-h) - 1.0)) * m0 + (at * ((Math.Exp(-h) - 1.0) / h + 1.0)) * d1
                   - (at * ((Math.Exp(-h) - 1.0 + h) / (h * h) - 0.5)) * d2;
        return (at / as0) * x - (st * (Math.Exp(h) - 1.0)) * m0 - (st * ((Math.Exp(h) - 1.0) / h - 1.0)) * d1
               - (st * ((Math.Exp(h) - 1.0 - h) / (h * h) - 0.5)) * d2;
    }
}
