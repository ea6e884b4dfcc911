using PixArtLora.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Diffusion;

public class GaussianMathTests
{
    static double Scalar(Tensor t) => t.to(float64).item<double>();

    [Fact]
    public void KlMatchesTheClosedForm()
    {
        var t = (double v) => tensor(new[] { v }, float64);
        Assert.Equal(0.0, Scalar(GaussianMath.NormalKl(t(0.3), t(-0.7), t(0.3), t(-0.7))), 12);
        // KL(N(0, 1) ‖ N(1, e)) = ½ (-1 + 1 - 0 + e⁻¹ + 1 · e⁻¹) = 1/e.
        Assert.Equal(1 / Math.E, Scalar(GaussianMath.NormalKl(t(0), t(0), t(1), t(1))), 12);
    }

    [Fact]
    public void DiscretizedLikelihoodUsesBinsAndOpenEdges()
    {
        static double Cdf(double x) => 0.5 * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
        var t = (double v) => tensor(new[] { v }, float64);
        // Interior: log(Φ((x - μ + 1/255)/σ) - Φ((x - μ - 1/255)/σ)) with σ = e^0.5.
        double s = Math.Exp(-0.5);
        double interior = Math.Log(Cdf(s * (0.2 - 0.1 + 1 / 255.0)) - Cdf(s * (0.2 - 0.1 - 1 / 255.0)));
        Assert.Equal(interior, Scalar(GaussianMath.DiscretizedGaussianLogLikelihood(t(0.2), t(0.1), t(0.5))), 10);
        // x = 1 is the top bin: log(1 - Φ((x - μ - 1/255)/σ)); x = -1 the bottom bin: log Φ((x - μ + 1/255)/σ).
        Assert.Equal(Math.Log(1 - Cdf(1 - 0.1 - 1 / 255.0)), Scalar(GaussianMath.DiscretizedGaussianLogLikelihood(t(1), t(0.1), t(0))), 10);
        Assert.Equal(Math.Log(Cdf(-1 - 0.1 + 1 / 255.0)), Scalar(GaussianMath.DiscretizedGaussianLogLikelihood(t(-1), t(0.1), t(0))), 10);
        // A vanishing probability is clamped at 1e-12 rather than giving -inf.
        Assert.Equal(Math.Log(1e-12), Scalar(GaussianMath.DiscretizedGaussianLogLikelihood(t(0.5), t(-0.5), t(-6))), 6);
    }
}
