using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// The official PixArt sampler (<c>IDDPM(str(steps)).p_sample_loop</c>, scripts/inference.py): ancestral sampling on a
/// respaced process with the model's learned-range variance, so the model must return 2C channels (PixArt's 8).
/// The model is told the ORIGINAL timestep (timestep_map, 0..999) while the process is indexed by the respaced step;
/// noise is drawn at every step including the last, where it is multiplied by 0. The official default is 100 steps
/// and clip_denoised = false.
/// </summary>
public sealed class IddpmSampler : SamplerBase
{
    readonly int[] _timestepMap;
    readonly double[] _modelTimesteps;

    /// <summary>The respaced process.</summary>
    public GaussianDiffusion Diffusion { get; }

    /// <summary>Respaced index → original training timestep, ascending.</summary>
    public IReadOnlyList<int> TimestepMap => _timestepMap;

    /// <summary>Clamp the predicted x_0 to [-1, 1] (PixArt's inference passes false).</summary>
    public bool ClipDenoised { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<double> Timesteps => _modelTimesteps;

    /// <inheritdoc/>
    public override bool NeedsLearnedVariance => true;

    /// <summary>IDDPM respaced to <paramref name="steps"/> evenly spread steps.</summary>
    public IddpmSampler(int steps, SchedulerConfig? config = null, bool clipDenoised = false)
        : this(CheckedRespacing(steps, config), config, clipDenoised) { }

    /// <summary>IDDPM with an explicit respacing string: "N", section counts "a,b,c", or "ddimN".</summary>
    public IddpmSampler(string respacing, SchedulerConfig? config = null, bool clipDenoised = false)
        : this(NoiseSchedule.FromConfig(config), respacing, clipDenoised) { }

    IddpmSampler(NoiseSchedule schedule, string respacing, bool clipDenoised)
        : this(schedule, TimestepGrid.IddpmRespacing(schedule.TrainTimesteps, respacing), clipDenoised) { }

    IddpmSampler(NoiseSchedule schedule, int[] timestepMap, bool clipDenoised)
        : base("iddpm", schedule, timestepMap.Length)
    {
        _timestepMap = timestepMap;
        _modelTimesteps = timestepMap.Reverse().Select(t => (double)t).ToArray();
        ClipDenoised = clipDenoised;
        Diffusion = new GaussianDiffusion(schedule.Respaced(timestepMap));
    }

    static string CheckedRespacing(int steps, SchedulerConfig? config)
    {
        CheckStepCount("iddpm", steps, config?.NumTrainTimesteps ?? 1000);
        return steps.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The respaced process index visited at step <paramref name="stepIndex"/> (StepCount-1 down to 0).</summary>
    public int RespacedIndex(int stepIndex) => StepCount - 1 - stepIndex;

    /// <summary>
    /// One p_sample step that also returns the predicted x_0 (for previews and step-by-step checks). Stateless: any
    /// step index may be evaluated in any order.
    /// </summary>
    public IddpmStepOutput Denoise(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource? noise)
    {
        CheckIndex(stepIndex);
        using var scope = NewDisposeScope();
        var dtype = sample.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var (next, x0) = PSample(modelOutput.to(dtype), stepIndex, sample.to(dtype), noise);
        return new IddpmStepOutput(next.to(sample.dtype).MoveToOuterDisposeScope(), x0.to(sample.dtype).MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    protected override Tensor StepCore(Tensor modelOutput, int i, Tensor sample, NoiseSource? noise) => PSample(modelOutput, i, sample, noise).Sample;

    (Tensor Sample, Tensor PredXStart) PSample(Tensor modelOutput, int i, Tensor x, NoiseSource? noise)
    {
        if (modelOutput.shape[1] != 2 * x.shape[1])
            throw new ArgumentException($"iddpm: model output has {modelOutput.shape[1]} channels; expected {2 * x.shape[1]} (eps and learned variance)");
        int j = RespacedIndex(i);
        var t = full(new[] { x.shape[0] }, j, int64, x.device);
        var p = Diffusion.PMeanVariance(modelOutput, x, t, ClipDenoised);
        var z = DrawNoise(noise, x);
        var next = j == 0 ? p.Mean : p.Mean + (0.5 * p.LogVariance).exp() * z;
        return (next, p.PredXStart);
    }
}

/// <summary>The next sample and the x_0 prediction of one IDDPM step.</summary>
public sealed record IddpmStepOutput(Tensor Sample, Tensor PredXStart) : IDisposable
{
    public void Dispose() { Sample.Dispose(); PredXStart.Dispose(); }
}
