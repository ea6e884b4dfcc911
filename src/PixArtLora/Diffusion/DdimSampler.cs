using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// DDIM (Song et al. 2021), after diffusers' DDIMScheduler (v0.31): deterministic for eta = 0, ancestral-like noise
/// for eta &gt; 0; x_0 clipped per clip_sample (default true) or dynamically thresholded.
/// </summary>
public sealed class DdimSampler : SamplerBase
{
    readonly long[] _timesteps;
    readonly double[] _timestepValues;
    readonly SchedulerConfig _config;
    readonly string _predictionType;
    readonly double _finalAlphaCumprod;
    readonly int _stride;

    /// <summary>The DDIM eta: 0 is the deterministic ODE sampler, 1 matches DDPM's posterior variance.</summary>
    public double Eta { get; }

    /// <summary>Recompute eps from the clipped x_0 (diffusers' use_clipped_model_output).</summary>
    public bool UseClippedModelOutput { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<double> Timesteps => _timestepValues;

    /// <summary>Builds the sampler for <paramref name="steps"/> steps from a diffusers scheduler config (null: defaults).</summary>
    public DdimSampler(int steps, SchedulerConfig? config = null, double eta = 0.0, bool useClippedModelOutput = false)
        : base("ddim", NoiseSchedule.FromConfig(config), steps)
    {
        if (eta < 0 || double.IsNaN(eta)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "ddim: eta must be >= 0");
        _config = config ?? SchedulerConfig.Empty;
        Eta = eta;
        UseClippedModelOutput = useClippedModelOutput;
        _predictionType = _config.Choose("prediction_type", _config.PredictionType, "epsilon", Prediction.Types);
        // DDIM's own default spacing is "leading"; PixArt's config says linspace.
        string spacing = _config.Choose("timestep_spacing", _config.TimestepSpacing, "leading", TimestepGrid.Spacings);
        _timesteps = TimestepGrid.SingleStep(spacing, Schedule.TrainTimesteps, steps, _config.StepsOffset ?? 0);
        _timestepValues = _timesteps.Select(t => (double)t).ToArray();
        if (_timesteps.Any(t => t < 0 || t >= Schedule.TrainTimesteps))
            throw _config.Invalid("steps_offset", (_config.StepsOffset ?? 0).ToString(), $"an offset keeping timesteps within [0, {Schedule.TrainTimesteps - 1}]");
        _finalAlphaCumprod = _config.SetAlphaToOne ?? true ? 1.0 : Schedule.AlphasCumprod[0];
        // diffusers steps back by T // N whatever the spacing (with linspace the visited grid is not exactly that stride).
        _stride = Schedule.TrainTimesteps / steps;
    }

    /// <inheritdoc/>
    protected override Tensor StepCore(Tensor modelOutput, int i, Tensor sample, NoiseSource? noise)
    {
        long t = _timesteps[i], prevT = t - _stride;
        double acT = Schedule.AlphasCumprod[(int)t];
        double acPrev = prevT >= 0 ? Schedule.AlphasCumprod[(int)prevT] : _finalAlphaCumprod;
        double alpha = Math.Sqrt(acT), sigma = Math.Sqrt(1 - acT);

        var output = PredictionChannels(modelOutput, sample);
        var x0 = Prediction.ToX0(_predictionType, output, sample, alpha, sigma);
        var eps = Prediction.ToEps(_predictionType, output, sample, alpha, sigma);
        x0 = Prediction.ClipX0(x0, _config, clipSampleDefault: true);

        double variance = NoiseSchedule.Posterior(acT, acPrev).Variance;
        double std = Eta * Math.Sqrt(variance);
        if (UseClippedModelOutput) eps = (sample - alpha * x0) / sigma;
        var prev = Math.Sqrt(acPrev) * x0 + Math.Sqrt(1 - acPrev - std * std) * eps;
        // diffusers draws whenever eta > 0, also at the last step where std is 0, which keeps generator streams aligned.
        if (Eta > 0) prev = prev + std * DrawNoise(noise, sample);
        return prev;
    }
}
