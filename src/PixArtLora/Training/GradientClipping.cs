using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Training;

/// <summary>Gradient clipping by the global L2 norm over all parameters (PyTorch's <c>clip_grad_norm_</c>).</summary>
public static class GradientClipping
{
    /// <summary>
    /// Computes the L2 norm of all gradients together and, when it exceeds <paramref name="maxNorm"/>, scales
    /// every gradient by maxNorm / (norm + 1e-6) as PyTorch does. Parameters without a gradient are ignored.
    /// A non-positive or infinite <paramref name="maxNorm"/> only measures.
    /// </summary>
    /// <returns>The norm before clipping (NaN or ∞ when a gradient is not finite; check with <see cref="TrainingGuards"/>).</returns>
    public static double ClipByGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0.0;
        // Per-tensor norms in float32 (or better) then the norm of those: the same two-stage reduction as PyTorch.
        var norms = grads.Select(g => (g.dtype is ScalarType.Float64 ? g : g.to(ScalarType.Float32)).norm().to(ScalarType.Float32)
            .to(grads[0].device)).ToArray();
        var total = stack(norms).norm();
        double totalValue = total.item<float>();
        if (maxNorm > 0 && !double.IsInfinity(maxNorm))
        {
            // Multiply even when below the limit? PyTorch clamps the coefficient to 1 and always multiplies;
            // multiplying by exactly 1 changes nothing, so skipping it gives identical gradients.
            double coef = maxNorm / (totalValue + 1e-6);
            if (coef < 1.0 || double.IsNaN(coef))
                foreach (var g in grads) g.mul_(coef);
        }
        return totalValue;
    }

    /// <summary><see cref="ClipByGlobalNorm(IEnumerable{Parameter}, double)"/> over named parameters.</summary>
    public static double ClipByGlobalNorm(IEnumerable<(string Name, Parameter Parameter)> parameters, double maxNorm) =>
        ClipByGlobalNorm(parameters.Select(p => p.Parameter), maxNorm);
}
