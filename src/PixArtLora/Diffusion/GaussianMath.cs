using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// Gaussian helpers of the variational bound (IDDPM's diffusion_utils.py): KL between diagonal Gaussians and the
/// discretized Gaussian log-likelihood of 8-bit data scaled to [-1, 1].
/// </summary>
public static class GaussianMath
{
    /// <summary>Mean over every dimension but the batch dimension.</summary>
    public static Tensor MeanFlat(Tensor x) =>
        x.dim() <= 1 ? x.alias() : x.mean(Enumerable.Range(1, (int)x.dim() - 1).Select(d => (long)d).ToArray());

    /// <summary>KL(N(mean1, exp(logvar1)) ‖ N(mean2, exp(logvar2))), elementwise, in nats.</summary>
    public static Tensor NormalKl(Tensor mean1, Tensor logvar1, Tensor mean2, Tensor logvar2)
    {
        using var scope = NewDisposeScope();
        var kl = 0.5 * (-1.0 + logvar2 - logvar1 + (logvar1 - logvar2).exp() + (mean1 - mean2).square() * (-logvar2).exp());
        return kl.MoveToOuterDisposeScope();
    }

    /// <summary>The tanh approximation of the standard normal CDF: 0.5 (1 + tanh(sqrt(2/π) (x + 0.044715 x³))).</summary>
    public static Tensor ApproxStandardNormalCdf(Tensor x)
    {
        using var scope = NewDisposeScope();
        var cdf = 0.5 * (1.0 + (Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh());
        return cdf.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// log P(x) under a Gaussian discretized into bins of half-width 1/255 (data assumed to be uint8 rescaled to [-1, 1]);
    /// the outermost bins extend to ±∞ (x &lt; -0.999 / x &gt; 0.999). Probabilities are clamped at 1e-12. In nats.
    /// </summary>
    public static Tensor DiscretizedGaussianLogLikelihood(Tensor x, Tensor means, Tensor logScales)
    {
        if (!x.shape.SequenceEqual(means.shape) || !x.shape.SequenceEqual(logScales.shape))
            throw new ArgumentException("x, means and log scales must have the same shape");
        using var scope = NewDisposeScope();
        var centered = x - means;
        var invStd = (-logScales).exp();
        var cdfPlus = ApproxStandardNormalCdf(invStd * (centered + 1.0 / 255.0));
        var cdfMin = ApproxStandardNormalCdf(invStd * (centered - 1.0 / 255.0));
        var logCdfPlus = cdfPlus.clamp(min: 1e-12).log();
        var logOneMinusCdfMin = (1.0 - cdfMin).clamp(min: 1e-12).log();
        var logDelta = (cdfPlus - cdfMin).clamp(min: 1e-12).log();
        var logProbs = where(x.lt(-0.999), logCdfPlus, where(x.gt(0.999), logOneMinusCdfMin, logDelta));
        return logProbs.MoveToOuterDisposeScope();
    }
}
