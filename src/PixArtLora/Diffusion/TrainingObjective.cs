using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>Which training loss to use.</summary>
public enum DiffusionLoss
{
    /// <summary>Mean squared error of the eps (or v) prediction, as diffusers-style LoRA scripts train.</summary>
    Mse,
    /// <summary>
    /// The official PixArt objective: MSE of eps plus the variational bound (bits) that trains the learned-range
    /// variance channels, with the eps prediction frozen inside the bound (IDDPM's "hybrid" loss, not rescaled).
    /// </summary>
    MseVb,
}

/// <summary>Per-sample loss terms ([B] each). Loss = weighted Mse (+ Vb); train on Loss.mean().</summary>
public sealed record LossTerms(Tensor Loss, Tensor Mse, Tensor? Vb) : IDisposable
{
    public void Dispose() { Loss.Dispose(); Mse.Dispose(); Vb?.Dispose(); }
}

/// <summary>
/// The training side of diffusion: timestep sampling, noising, targets and losses. A trainer step is
/// <code>
/// var t = objective.SampleTimesteps(B, generator, device);
/// var noise = objective.SampleNoise(x0, generator);
/// var xt = objective.AddNoise(x0, noise, t);
/// var output = model(xt, t);                     // [B, C or 2C, H, W]
/// using var terms = objective.Losses(output, x0, xt, noise, t);
/// var loss = terms.Loss.mean();
/// </code>
/// </summary>
public sealed class TrainingObjective
{
    readonly GaussianDiffusion? _vbDiffusion;

    /// <summary>The training schedule (PixArt: linear 1e-4 → 0.02 over 1000 steps).</summary>
    public NoiseSchedule Schedule { get; }
    /// <summary>Mse or MseVb.</summary>
    public DiffusionLoss Loss { get; }
    /// <summary>"epsilon" (PixArt) or "v_prediction".</summary>
    public string PredictionType { get; }
    /// <summary>Min-SNR-γ weighting (Hang et al. 2023) of the MSE term, or null for none.</summary>
    public double? MinSnrGamma { get; }
    /// <summary>Noise offset: adds offset · N(0, 1) per sample and channel to the noise (0 = off).</summary>
    public double NoiseOffset { get; }

    public TrainingObjective(NoiseSchedule? schedule = null, DiffusionLoss loss = DiffusionLoss.Mse, double? minSnrGamma = null,
                             double noiseOffset = 0, string predictionType = "epsilon")
    {
        Schedule = schedule ?? NoiseSchedule.PixArtDefault();
        Loss = loss;
        if (predictionType is not ("epsilon" or "v_prediction"))
            throw new ArgumentException($"prediction type \"{predictionType}\" is not supported for training; expected epsilon or v_prediction");
        if (loss == DiffusionLoss.MseVb && predictionType != "epsilon")
            throw new ArgumentException("the mse+vb loss needs epsilon prediction (its variational bound is defined for eps)");
        if (minSnrGamma is { } g && !(g > 0)) throw new ArgumentOutOfRangeException(nameof(minSnrGamma), g, "Min-SNR gamma must be > 0");
        if (!(noiseOffset >= 0)) throw new ArgumentOutOfRangeException(nameof(noiseOffset), noiseOffset, "noise offset must be >= 0");
        PredictionType = predictionType;
        MinSnrGamma = minSnrGamma;
        NoiseOffset = noiseOffset;
        // PixArt trains IDDPM("1000"): a respacing that keeps every step (betas recomputed from alphas_cumprod).
        if (loss == DiffusionLoss.MseVb)
            _vbDiffusion = new GaussianDiffusion(Schedule.Respaced(Enumerable.Range(0, Schedule.TrainTimesteps).ToArray()));
    }

    /// <summary>Parses a loss name: "mse" or "mse+vb".</summary>
    public static DiffusionLoss ParseLoss(string name) => name.Trim().ToLowerInvariant() switch
    {
        "mse" => DiffusionLoss.Mse,
        "mse+vb" or "mse_vb" or "hybrid" => DiffusionLoss.MseVb,
        _ => throw new ArgumentException($"unknown loss \"{name}\"; expected mse or mse+vb"),
    };

    /// <summary>Timesteps uniform over [0, T), one per sample (int64 [B]).</summary>
    public Tensor SampleTimesteps(long batch, Generator? generator, Device? device = null)
    {
        device ??= generator?.device ?? CPU;
        var t = randint(0, Schedule.TrainTimesteps, new[] { batch }, int64, generator?.device ?? device, generator: generator);
        return t.device == device ? t : t.to(device, disposeAfter: true);
    }

    /// <summary>Standard-normal noise like <paramref name="x0"/>, plus the noise offset if set.</summary>
    public Tensor SampleNoise(Tensor x0, Generator? generator)
    {
        using var scope = NewDisposeScope();
        var source = generator is null ? null : NoiseSource.FromGenerator(generator);
        Tensor Draw(long[] shape) => source?.Next(shape, x0.dtype, x0.device) ?? randn(shape, x0.dtype, x0.device);
        var noise = Draw(x0.shape);
        if (NoiseOffset > 0) noise = ApplyNoiseOffset(noise, Draw(OffsetShape(x0)), NoiseOffset);
        return noise.MoveToOuterDisposeScope();
    }

    static long[] OffsetShape(Tensor x) => x.shape.Select((d, i) => i < 2 ? d : 1L).ToArray();

    /// <summary>
    /// Noise offset (Guttenberg 2023, "Diffusion with Offset Noise"): noise + offset · perChannel, where perChannel is
    /// N(0, 1) of shape [B, C, 1, 1] — a constant shift per sample and channel that lets the model learn to change the
    /// mean brightness of an image.
    /// </summary>
    public static Tensor ApplyNoiseOffset(Tensor noise, Tensor perChannel, double offset) => noise + offset * perChannel;

    /// <summary>x_t = sqrt(ac[t]) x_0 + sqrt(1 - ac[t]) noise.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor t) => Schedule.AddNoise(x0, noise, t);

    /// <summary>The regression target: the noise (epsilon) or the velocity v.</summary>
    public Tensor Target(Tensor x0, Tensor noise, Tensor t) =>
        PredictionType == "epsilon" ? noise.alias() : Schedule.Velocity(x0, noise, t);

    /// <summary>
    /// Min-SNR-γ loss weights per sample: min(SNR(t), γ) / SNR(t) for epsilon prediction, min(SNR(t), γ) / (SNR(t) + 1)
    /// for v prediction, with SNR = ac / (1 - ac). Float32 [B].
    /// </summary>
    public static Tensor MinSnrWeights(NoiseSchedule schedule, Tensor t, double gamma, string predictionType)
    {
        var weights = t.to(int64).cpu().data<long>().Select(step =>
        {
            double snr = schedule.Snr((int)step);
            return Math.Min(snr, gamma) / (predictionType == "epsilon" ? snr : snr + 1);
        }).ToArray();
        return tensor(weights, float32, t.device);
    }

    /// <summary>
    /// The per-sample loss terms. <paramref name="modelOutput"/> is [B, C, ...] or [B, 2C, ...] (eps then learned
    /// variance); <paramref name="xT"/> is what the model saw. Mse = mean over C, H, W of (target - prediction)², times
    /// the Min-SNR weight if set; MseVb adds the variational bound (needs 2C channels; the timesteps must be training
    /// timesteps). Computed in at least float32; gradients flow to the model output.
    /// </summary>
    public LossTerms Losses(Tensor modelOutput, Tensor x0, Tensor xT, Tensor noise, Tensor t)
    {
        long c = x0.shape[1];
        if (modelOutput.shape[0] != x0.shape[0] || (modelOutput.shape[1] != c && modelOutput.shape[1] != 2 * c))
            throw new ArgumentException($"model output shape [{string.Join(", ", modelOutput.shape)}] does not fit latents " +
                                        $"[{string.Join(", ", x0.shape)}]; expected {c} or {2 * c} channels");
        if (Loss == DiffusionLoss.MseVb && modelOutput.shape[1] != 2 * c)
            throw new ArgumentException($"the mse+vb loss needs the learned variance: a model output with {2 * c} channels, got {modelOutput.shape[1]}");
        Schedule.CheckTimesteps(t, x0);
        using var scope = NewDisposeScope();
        var dtype = modelOutput.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var output = modelOutput.to(dtype);
        var prediction = output.narrow(1, 0, c);
        var target = Target(x0.to(dtype), noise.to(dtype), t);
        var mse = GaussianMath.MeanFlat((target - prediction).square());
        var weighted = MinSnrGamma is { } gamma ? mse * MinSnrWeights(Schedule, t, gamma, PredictionType).to(dtype) : mse;
        if (_vbDiffusion is null)
            return new LossTerms(weighted.MoveToOuterDisposeScope(), mse.MoveToOuterDisposeScope(), null);

        // The bound trains only the variance: eps enters it detached (IDDPM's frozen_out).
        var frozen = cat(new[] { prediction.detach(), output.narrow(1, c, c) }, 1);
        using var vb = _vbDiffusion.VariationalBound(frozen, x0.to(dtype), xT.to(dtype), t);
        var vbTerm = vb.Vb.alias();
        return new LossTerms((weighted + vbTerm).MoveToOuterDisposeScope(), mse.MoveToOuterDisposeScope(), vbTerm.MoveToOuterDisposeScope());
    }
}
