using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// The official PixArt diffusion process (IDDPM's GaussianDiffusion, diffusion/model/gaussian_diffusion.py):
/// epsilon prediction with a learned-range variance, over a (possibly respaced) schedule. Arrays are float64;
/// each coefficient is gathered per batch row and cast to the tensor dtype before multiplying, as the reference does.
/// Timesteps <c>t</c> here are indices into this process's schedule (respaced indices for a respaced process).
/// </summary>
public sealed class GaussianDiffusion
{
    readonly double[] _sqrtAc, _sqrtOneMinusAc, _sqrtRecipAc, _sqrtRecipM1Ac;
    readonly double[] _posteriorLogVarianceClipped, _coefX0, _coefXt, _logBetas;

    /// <summary>The schedule this process runs on.</summary>
    public NoiseSchedule Schedule { get; }

    /// <summary>log of the posterior variance, with index 0 (variance 0) replaced by index 1's value.</summary>
    public IReadOnlyList<double> PosteriorLogVarianceClipped => _posteriorLogVarianceClipped;

    public GaussianDiffusion(NoiseSchedule schedule)
    {
        Schedule = schedule;
        int n = schedule.TrainTimesteps;
        var ac = schedule.AlphasCumprod;
        _sqrtAc = ac.Select(Math.Sqrt).ToArray();
        _sqrtOneMinusAc = ac.Select(a => Math.Sqrt(1.0 - a)).ToArray();
        _sqrtRecipAc = ac.Select(a => Math.Sqrt(1.0 / a)).ToArray();
        _sqrtRecipM1Ac = ac.Select(a => Math.Sqrt(1.0 / a - 1)).ToArray();
        _logBetas = schedule.Betas.Select(x => Math.Log(x)).ToArray();
        _coefX0 = new double[n];
        _coefXt = new double[n];
        var posteriorVariance = new double[n];
        for (int i = 0; i < n; i++)
            (_coefX0[i], _coefXt[i], posteriorVariance[i]) = NoiseSchedule.Posterior(ac[i], i == 0 ? 1.0 : ac[i - 1]);
        // The posterior variance is 0 at t = 0; its log is clipped to the value at t = 1 (a one-step process has none).
        _posteriorLogVarianceClipped = n > 1
            ? posteriorVariance.Select((v, i) => Math.Log(i == 0 ? posteriorVariance[1] : v)).ToArray()
            : Array.Empty<double>();
    }

    /// <summary>q_sample: x_t = sqrt(ac[t]) x_0 + sqrt(1 - ac[t]) noise, one t per batch row.</summary>
    public Tensor QSample(Tensor xStart, Tensor t, Tensor noise)
    {
        using var scope = NewDisposeScope();
        var x = NoiseSchedule.Gather(_sqrtAc, t, xStart) * xStart + NoiseSchedule.Gather(_sqrtOneMinusAc, t, xStart) * noise;
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Mean and clipped log variance of the true posterior q(x_{t-1} | x_t, x_0).</summary>
    public (Tensor Mean, Tensor LogVariance) QPosterior(Tensor xStart, Tensor xT, Tensor t)
    {
        using var scope = NewDisposeScope();
        var mean = PosteriorMean(xStart, xT, t);
        var logVar = NoiseSchedule.Gather(_posteriorLogVarianceClipped, t, xT) + zeros_like(xT);
        return (mean.MoveToOuterDisposeScope(), logVar.MoveToOuterDisposeScope());
    }

    Tensor PosteriorMean(Tensor xStart, Tensor xT, Tensor t) =>
        NoiseSchedule.Gather(_coefX0, t, xT) * xStart + NoiseSchedule.Gather(_coefXt, t, xT) * xT;

    /// <summary>x_0 from eps: sqrt(1/ac) x_t - sqrt(1/ac - 1) eps.</summary>
    public Tensor PredictXStartFromEps(Tensor xT, Tensor t, Tensor eps)
    {
        using var scope = NewDisposeScope();
        var x0 = NoiseSchedule.Gather(_sqrtRecipAc, t, xT) * xT - NoiseSchedule.Gather(_sqrtRecipM1Ac, t, xT) * eps;
        return x0.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// p_mean_variance for a learned-range model output [B, 2C, ...]: eps from the first C channels; the log variance
    /// interpolates between the posterior's (clipped) and log beta by (v + 1) / 2 from the last C channels; the mean is
    /// the posterior mean at the predicted x_0 (clamped to [-1, 1] when <paramref name="clipDenoised"/>).
    /// </summary>
    public ModelPrediction PMeanVariance(Tensor modelOutput, Tensor x, Tensor t, bool clipDenoised)
    {
        long c = x.shape[1];
        if (modelOutput.shape[1] != 2 * c)
            throw new ArgumentException($"learned-range variance needs a model output with {2 * c} channels (eps and variance); got {modelOutput.shape[1]}");
        using var scope = NewDisposeScope();
        var eps = modelOutput.narrow(1, 0, c);
        var v = modelOutput.narrow(1, c, c);
        var minLog = NoiseSchedule.Gather(_posteriorLogVarianceClipped, t, x);
        var maxLog = NoiseSchedule.Gather(_logBetas, t, x);
        var frac = (v + 1) / 2;
        var logVariance = frac * maxLog + (1 - frac) * minLog;
        var x0 = PredictXStartFromEps(x, t, eps);
        if (clipDenoised) x0 = x0.clamp(-1, 1);
        var mean = PosteriorMean(x0, x, t);
        return new ModelPrediction(mean.MoveToOuterDisposeScope(), logVariance.MoveToOuterDisposeScope(), x0.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The variational-bound term of the official loss, in bits per dimension, per batch row: KL(q posterior ‖ model)
    /// for t &gt; 0 and the discretized-Gaussian decoder NLL of x_0 at t = 0 (_vb_terms_bpd with clip_denoised = false).
    /// </summary>
    public VbTerms VariationalBound(Tensor modelOutput, Tensor xStart, Tensor xT, Tensor t)
    {
        using var scope = NewDisposeScope();
        var (trueMean, trueLogVar) = QPosterior(xStart, xT, t);
        var p = PMeanVariance(modelOutput, xT, t, clipDenoised: false);
        var kl = GaussianMath.MeanFlat(GaussianMath.NormalKl(trueMean, trueLogVar, p.Mean, p.LogVariance)) / Math.Log(2.0);
        var nll = GaussianMath.MeanFlat(-GaussianMath.DiscretizedGaussianLogLikelihood(xStart, p.Mean, 0.5 * p.LogVariance)) / Math.Log(2.0);
        var vb = where(t.eq(0), nll, kl);
        return new VbTerms(vb.MoveToOuterDisposeScope(), kl.MoveToOuterDisposeScope(), nll.MoveToOuterDisposeScope(),
            trueMean.MoveToOuterDisposeScope(), trueLogVar.MoveToOuterDisposeScope(),
            p.Mean.MoveToOuterDisposeScope(), p.LogVariance.MoveToOuterDisposeScope(), p.PredXStart.MoveToOuterDisposeScope());
    }
}

/// <summary>The model's reverse-step distribution: mean, log variance, and the x_0 prediction it came from.</summary>
public sealed record ModelPrediction(Tensor Mean, Tensor LogVariance, Tensor PredXStart) : IDisposable
{
    public void Dispose() { Mean.Dispose(); LogVariance.Dispose(); PredXStart.Dispose(); }
}

/// <summary>
/// The variational-bound term and its parts: Vb (bits, [B]) = DecoderNll where t = 0, else Kl; the true posterior and
/// the model's mean / log variance / x_0 prediction it compared.
/// </summary>
public sealed record VbTerms(Tensor Vb, Tensor Kl, Tensor DecoderNll, Tensor TrueMean, Tensor TrueLogVariance,
                             Tensor ModelMean, Tensor ModelLogVariance, Tensor PredXStart) : IDisposable
{
    public void Dispose()
    {
        foreach (var x in new[] { Vb, Kl, DecoderNll, TrueMean, TrueLogVariance, ModelMean, ModelLogVariance, PredXStart }) x.Dispose();
    }
}
