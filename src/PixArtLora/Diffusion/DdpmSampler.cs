using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// Ancestral DDPM sampling (Ho et al. 2020), after diffusers' DDPMScheduler (v0.31): the posterior mean from the
/// predicted x_0 plus noise of the configured variance (fixed_small by default; learned_range uses the model's
/// second C output channels). Draws noise at every step whose timestep is above 0.
/// </summary>
public sealed class DdpmSampler : SamplerBase
{
    static readonly string[] VarianceTypes = { "fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range" };

    readonly long[] _timesteps;
    readonly double[] _timestepValues;
    readonly SchedulerConfig _config;
    readonly string _predictionType, _varianceType;
    readonly int _stride;

    /// <inheritdoc/>
    public override IReadOnlyList<double> Timesteps => _timestepValues;

    /// <inheritdoc/>
    public override bool NeedsLearnedVariance => _varianceType is "learned" or "learned_range";

    /// <summary>Builds the sampler for <paramref name="steps"/> steps from a diffusers scheduler config (null: defaults).</summary>
    public DdpmSampler(int steps, SchedulerConfig? config = null)
        : base("ddpm", NoiseSchedule.FromConfig(config), steps)
    {
        _config = config ?? SchedulerConfig.Empty;
        _predictionType = _config.Choose("prediction_type", _config.PredictionType, "epsilon", Prediction.Types);
        _varianceType = _config.Choose("variance_type", _config.VarianceType, "fixed_small", VarianceTypes);
        string spacing = _config.Choose("timestep_spacing", _config.TimestepSpacing, "leading", TimestepGrid.Spacings);
        _timesteps = TimestepGrid.SingleStep(spacing, Schedule.TrainTimesteps, steps, _config.StepsOffset ?? 0);
        _timestepValues = _timesteps.Select(t => (double)t).ToArray();
        if (_timesteps.Any(t => t < 0 || t >= Schedule.TrainTimesteps))
            throw _config.Invalid("steps_offset", (_config.StepsOffset ?? 0).ToString(), $"an offset keeping timesteps within [0, {Schedule.TrainTimesteps - 1}]");
        _stride = Schedule.TrainTimesteps / steps;
    }

    /// <inheritdoc/>
    protected override Tensor StepCore(Tensor modelOutput, int i, Tensor sample, NoiseSource? noise)
    {
        long t = _timesteps[i], prevT = t - _stride;
        double acT = Schedule.AlphasCumprod[(int)t];
        double acPrev = prevT >= 0 ? Schedule.AlphasCumprod[(int)prevT] : 1.0;

        var output = PredictionChannels(modelOutput, sample);
        var x0 = Prediction.ToX0(_predictionType, output, sample, Math.Sqrt(acT), Math.Sqrt(1 - acT));
        x0 = Prediction.ClipX0(x0, _config, clipSampleDefault: true);

        var (coefX0, coefXt, posteriorVariance) = NoiseSchedule.Posterior(acT, acPrev);
        var prev = coefX0 * x0 + coefXt * sample;
        if (t <= 0) return prev;

        var z = DrawNoise(noise, sample);
        double variance = Math.Max(posteriorVariance, 1e-20);
        double betaT = 1 - acT / acPrev;
        switch (_varianceType)
        {
            case "fixed_small": return prev + Math.Sqrt(variance) * z;
            // diffusers' fixed_small_log already returns the standard deviation.
            case "fixed_small_log": return prev + Math.Exp(0.5 * Math.Log(variance)) * z;
            case "fixed_large": return prev + Math.Sqrt(betaT) * z;
            // diffusers 0.31 takes the square root of log(beta) here, a NaN for every beta < 1; we use the evident
            // intent, the standard deviation exp(0.5 · log beta), which equals fixed_large.
            case "fixed_large_log": return prev + Math.Exp(0.5 * Math.Log(betaT)) * z;
            case "learned":
            {
                var v = modelOutput.narrow(1, sample.shape[1], sample.shape[1]);
                return prev + v.sqrt() * z;
            }
            default:
            {
                // learned_range: interpolate the log variance between the posterior's and beta's by (v + 1) / 2.
                var v = modelOutput.narrow(1, sample.shape[1], sample.shape[1]);
                var frac = (v + 1) / 2;
                var logVariance = frac * Math.Log(betaT) + (1 - frac) * Math.Log(variance);
                return prev + (0.5 * logVariance).exp() * z;
            }
        }
    }
}
