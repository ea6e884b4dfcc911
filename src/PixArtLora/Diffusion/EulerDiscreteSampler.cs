using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022, algorithm 2), after diffusers'
/// EulerDiscreteScheduler (v0.31). The sample lives at scale sqrt(σ²+1): the initial noise is multiplied by
/// <see cref="InitNoiseSigma"/> and the model sees x / sqrt(σ²+1). Timesteps are float32 values (not rounded).
/// With s_churn &gt; 0 it adds noise before each step (the "churn" of the stochastic sampler).
/// </summary>
public sealed class EulerDiscreteSampler : SamplerBase
{
    readonly double[] _timesteps;
    readonly double[] _sigmas;           // N + 1, the last 0 or sigma_min
    readonly string _predictionType, _spacing;

    /// <summary>Churn: how much noise to add per step (0 = deterministic Euler).</summary>
    public double SChurn { get; init; }
    /// <summary>Churn only where s_tmin ≤ sigma ≤ s_tmax.</summary>
    public double STmin { get; init; }
    /// <summary>Churn only where s_tmin ≤ sigma ≤ s_tmax.</summary>
    public double STmax { get; init; } = double.PositiveInfinity;
    /// <summary>Scale of the churn noise.</summary>
    public double SNoise { get; init; } = 1.0;

    /// <inheritdoc/>
    public override IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>The N + 1 noise levels (float64).</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;

    /// <inheritdoc/>
    public override double InitNoiseSigma
    {
        get
        {
            double max = _sigmas.Max();
            return _spacing is "linspace" or "trailing" ? max : Math.Sqrt(max * max + 1);
        }
    }

    /// <summary>Builds the sampler for <paramref name="steps"/> steps from a diffusers scheduler config (null: defaults).</summary>
    public EulerDiscreteSampler(int steps, SchedulerConfig? config = null)
        : base("euler", ScheduleFor(config), steps)
    {
        config ??= SchedulerConfig.Empty;
        _predictionType = config.Choose("prediction_type", config.PredictionType, "epsilon", Prediction.Types);
        _spacing = config.Choose("timestep_spacing", config.TimestepSpacing, "linspace", TimestepGrid.Spacings);
        if (config.TimestepType is { } tt && tt != "discrete" && _predictionType == "v_prediction")
            throw config.Invalid("timestep_type", tt, "discrete (continuous v-prediction timesteps are not supported)");
        if (config.UseBetaSigmas == true)
            throw config.Invalid("use_beta_sigmas", "true", "false (use_karras_sigmas or use_exponential_sigmas instead)");
        string interpolation = config.Choose("interpolation_type", config.InterpolationType, "linear", "linear", "log_linear");
        bool finalZero = config.Choose("final_sigmas_type", config.FinalSigmasType, "zero", "zero", "sigma_min") == "zero";

        var trainSigmas = Schedule.Sigmas();
        var logSigmas = trainSigmas.Select(x => Math.Log(x)).ToArray();
        double[] timesteps = TimestepGrid.SingleStepFloat(_spacing, Schedule.TrainTimesteps, steps, config.StepsOffset ?? 0);
        double[] sigmas = interpolation == "linear"
            ? SigmaGrid.AtTimesteps(timesteps, trainSigmas)
            // diffusers builds steps + 1 values here (one more than timesteps), then appends the final sigma.
            : NumpyMath.Linspace(logSigmas[^1], logSigmas[0], steps + 1).Select(Math.Exp).ToArray();
        if (config.UseKarrasSigmas == true || config.UseExponentialSigmas == true)
        {
            double min = config.SigmaMin ?? sigmas[^1], max = config.SigmaMax ?? sigmas[0];
            sigmas = config.UseKarrasSigmas == true ? SigmaGrid.Karras(min, max, steps) : SigmaGrid.Exponential(min, max, steps);
            timesteps = sigmas.Select(s => (double)(float)SigmaGrid.SigmaToT(s, logSigmas)).ToArray();
        }
        _timesteps = timesteps;
        _sigmas = sigmas.Append(finalZero ? 0 : trainSigmas[0]).ToArray();
    }

    static NoiseSchedule ScheduleFor(SchedulerConfig? config)
    {
        var s = NoiseSchedule.FromConfig(config);
        return config?.RescaleBetasZeroSnr == true ? s.WithLastAlphaCumprod(Math.Pow(2, -24)) : s;
    }

    /// <inheritdoc/>
    public override Tensor ScaleModelInput(Tensor sample, int stepIndex)
    {
        CheckIndex(stepIndex);
        double sigma = _sigmas[stepIndex];
        return sample / Math.Sqrt(sigma * sigma + 1);
    }

    /// <inheritdoc/>
    protected override Tensor StepCore(Tensor modelOutput, int i, Tensor sample, NoiseSource? noise)
    {
        double sigma = _sigmas[i];
        double gamma = STmin <= sigma && sigma <= STmax ? Math.Min(SChurn / (_sigmas.Length - 1), Math.Sqrt(2) - 1) : 0.0;
        double sigmaHat = sigma * (gamma + 1);
        if (gamma > 0)
            sample = sample + (SNoise * Math.Sqrt(sigmaHat * sigmaHat - sigma * sigma)) * DrawNoise(noise, sample);

        var output = PredictionChannels(modelOutput, sample);
        var x0 = _predictionType switch
        {
            "epsilon" => sample - sigmaHat * output,
            "sample" => output,
            _ => output * (-sigma / Math.Sqrt(sigma * sigma + 1)) + sample / (sigma * sigma + 1),
        };
        var derivative = (sample - x0) / sigmaHat;
        double dt = _sigmas[i + 1] - sigmaHat;
        return sample + derivative * dt;
    }
}
