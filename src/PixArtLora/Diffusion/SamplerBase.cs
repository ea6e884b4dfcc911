using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// What every sampler shares: step-order bookkeeping, shape checks, computing in at least float32 (as diffusers
/// upcasts half-precision samples), dropping learned-variance channels, drawing noise, and owning the history
/// tensors multistep solvers keep between steps.
/// </summary>
public abstract class SamplerBase : ISampler
{
    readonly List<Tensor> _kept = new();
    int _nextStep;

    /// <inheritdoc/>
    public string Name { get; }
    /// <inheritdoc/>
    public NoiseSchedule Schedule { get; }
    /// <inheritdoc/>
    public int StepCount { get; }
    /// <inheritdoc/>
    public abstract IReadOnlyList<double> Timesteps { get; }
    /// <inheritdoc/>
    public virtual double InitNoiseSigma => 1.0;
    /// <inheritdoc/>
    public virtual bool NeedsLearnedVariance => false;

    protected SamplerBase(string name, NoiseSchedule schedule, int steps)
    {
        CheckStepCount(name, steps, schedule.TrainTimesteps);
        Name = name;
        Schedule = schedule;
        StepCount = steps;
    }

    /// <summary>Throws a clear error for 0 (or negative) steps or more steps than training timesteps.</summary>
    public static void CheckStepCount(string sampler, int steps, int trainTimesteps)
    {
        if (steps < 1 || steps > trainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps,
                $"{sampler}: {steps} steps requested; expected an integer from 1 to {trainTimesteps} (the training timesteps)");
    }

    /// <inheritdoc/>
    public virtual Tensor ScaleModelInput(Tensor sample, int stepIndex)
    {
        CheckIndex(stepIndex);
        return sample.alias();
    }

    /// <inheritdoc/>
    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource? noise = null)
    {
        CheckIndex(stepIndex);
        if (stepIndex == 0) { ReleaseKept(); ResetState(); }
        else if (stepIndex != _nextStep)
            throw new InvalidOperationException($"{Name}: step {stepIndex} taken after step {_nextStep - 1}; steps must run in order from 0");
        CheckOutputShape(modelOutput, sample);
        using var scope = NewDisposeScope();
        var dtype = ComputeDtype(sample.dtype);
        var result = StepCore(modelOutput.to(dtype), stepIndex, sample.to(dtype), noise).to(sample.dtype);
        _nextStep = stepIndex + 1;
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The step proper, in float32 or float64; the base casts the result back to the sample's dtype.</summary>
    protected abstract Tensor StepCore(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource? noise);

    /// <summary>Clears multistep history at the start of a trajectory.</summary>
    protected virtual void ResetState() { }

    static ScalarType ComputeDtype(ScalarType t) => t == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>Throws unless <paramref name="stepIndex"/> lies in [0, StepCount).</summary>
    protected void CheckIndex(int stepIndex)
    {
        if (stepIndex < 0 || stepIndex >= StepCount)
            throw new ArgumentOutOfRangeException(nameof(stepIndex), stepIndex, $"{Name}: step index must lie in [0, {StepCount - 1}]");
    }

    void CheckOutputShape(Tensor output, Tensor sample)
    {
        bool ok = output.dim() == sample.dim() && sample.dim() >= 2 && output.shape[0] == sample.shape[0]
                  && output.shape.Skip(2).SequenceEqual(sample.shape.Skip(2))
                  && (output.shape[1] == sample.shape[1] || output.shape[1] == 2 * sample.shape[1]);
        if (!ok)
            throw new ArgumentException($"{Name}: model output shape [{string.Join(", ", output.shape)}] does not fit sample shape " +
                                        $"[{string.Join(", ", sample.shape)}]; expected the same shape with C or 2C channels");
        if (NeedsLearnedVariance && output.shape[1] != 2 * sample.shape[1])
            throw new ArgumentException($"{Name}: model output has {output.shape[1]} channels; expected {2 * sample.shape[1]} " +
                                        $"(eps and learned variance for {sample.shape[1]} latent channels)");
    }

    /// <summary>
    /// diffusers' <c>convert_model_output</c> of the sigma-space solvers (DPM-Solver, SA-Solver): the model output as
    /// x_0 or as eps, dynamically thresholded when the config asks for it.
    /// </summary>
    protected sealed record ModelOutputConversion(string PredictionType, bool Thresholding, double ThresholdRatio, double SampleMaxValue)
    {
        /// <summary>The config's thresholding settings with diffusers' defaults, for an already validated prediction type.</summary>
        public static ModelOutputConversion From(SchedulerConfig config, string predictionType) =>
            new(predictionType, config.Thresholding ?? false, config.DynamicThresholdingRatio ?? 0.995, config.SampleMaxValue ?? 1.0);

        /// <summary>x_0 when <paramref name="toX0"/>, else eps, at noise level (alpha, sigma).</summary>
        public Tensor Convert(Tensor output, Tensor sample, double alpha, double sigma, bool toX0)
        {
            // diffusers slices [:, :3] for learned variance (written for RGB models); the first C channels is the same there.
            var pred = PredictionChannels(output, sample);
            if (toX0)
            {
                var x0 = Prediction.ToX0(PredictionType, pred, sample, alpha, sigma);
                return Thresholding ? Prediction.DynamicThreshold(x0, ThresholdRatio, SampleMaxValue) : x0;
            }
            var eps = Prediction.ToEps(PredictionType, pred, sample, alpha, sigma);
            if (!Thresholding) return eps;
            var clipped = Prediction.DynamicThreshold((sample - sigma * eps) / alpha, ThresholdRatio, SampleMaxValue);
            return (sample - alpha * clipped) / sigma;
        }
    }

    /// <summary>The first C channels of a 2C-channel output (eps without the learned variance), else the output itself.</summary>
    protected static Tensor PredictionChannels(Tensor output, Tensor sample) =>
        output.shape[1] == sample.shape[1] ? output : output.narrow(1, 0, sample.shape[1]);

    /// <summary>A standard-normal tensor shaped like <paramref name="like"/>, or a clear error when no source was given.</summary>
    protected Tensor DrawNoise(NoiseSource? noise, Tensor like)
    {
        if (noise == null)
            throw new InvalidOperationException($"{Name}: this step draws Gaussian noise; pass a seeded torch.Generator (or a NoiseSource)");
        return noise.Next(like.shape, like.dtype, like.device);
    }

    /// <summary>Takes a tensor out of the current dispose scope so it survives until the next step; freed on reset or disposal.</summary>
    protected Tensor Keep(Tensor t)
    {
        t.DetachFromDisposeScope();
        _kept.Add(t);
        return t;
    }

    /// <summary>Frees a tensor previously kept.</summary>
    protected void Release(Tensor? t)
    {
        if (t is null) return;
        if (_kept.Remove(t)) t.Dispose();
    }

    void ReleaseKept()
    {
        foreach (var t in _kept) t.Dispose();
        _kept.Clear();
    }

    /// <summary>Frees the history tensors.</summary>
    public void Dispose()
    {
        ReleaseKept();
        GC.SuppressFinalize(this);
    }
}
