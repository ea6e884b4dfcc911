using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// The VAE posterior q(z|x): a Gaussian per latent element with <see cref="Mean"/> and <see cref="Std"/>
/// (diffusers' <c>DiagonalGaussianDistribution</c>, autoencoders/vae.py). Its tensors live in the dispose scope
/// that was current when it was made, like any forward result; <see cref="Dispose"/> releases them early.
/// </summary>
public sealed class DiagonalGaussianDistribution : IDisposable
{
    /// <summary>diffusers clamps the log-variance to this range before taking exp.</summary>
    public const double LogVarMin = -30.0, LogVarMax = 20.0;

    public Tensor Mean { get; }

    /// <summary>exp(0.5 · logvar), computed in the encoder's dtype as diffusers does.</summary>
    public Tensor Std { get; }

    /// <summary>The clamped log-variance the encoder produced, or 2·log(std) for a posterior rebuilt from a cache.</summary>
    public Tensor LogVar => _logVar ??= 2.0 * Std.log();

    Tensor? _logVar;

    DiagonalGaussianDistribution(Tensor mean, Tensor std, Tensor? logVar)
    {
        Mean = mean;
        Std = std;
        _logVar = logVar;
    }

    /// <summary>From the encoder's moments [B, 2·C, h, w]: the first C channels are the mean, the rest the log-variance.</summary>
    public static DiagonalGaussianDistribution FromMoments(Tensor moments)
    {
        if (moments.dim() < 2 || moments.shape[1] % 2 != 0)
            throw new ArgumentException($"posterior moments must have an even channel count at dim 1, got shape [{string.Join(", ", moments.shape)}]");
        using var scope = NewDisposeScope();
        var parts = moments.chunk(2, dim: 1);
        var mean = parts[0].contiguous();
        var logVar = parts[1].clamp(LogVarMin, LogVarMax);
        var std = (0.5 * logVar).exp();
        return new DiagonalGaussianDistribution(mean.MoveToOuterDisposeScope(), std.MoveToOuterDisposeScope(), logVar.MoveToOuterDisposeScope());
    }

    /// <summary>From a stored mean and standard deviation (e.g. the latent cache). Takes ownership of both.</summary>
    public static DiagonalGaussianDistribution FromMeanStd(Tensor mean, Tensor std)
    {
        if (!mean.shape.SequenceEqual(std.shape))
            throw new ArgumentException($"posterior mean shape [{string.Join(", ", mean.shape)}] differs from std shape [{string.Join(", ", std.shape)}]");
        if (mean.dtype != std.dtype) throw new ArgumentException($"posterior mean is {mean.dtype} but std is {std.dtype}");
        return new DiagonalGaussianDistribution(mean, std, null);
    }

    /// <summary>
    /// A draw mean + std · ε, ε ~ N(0, I) in the posterior's dtype. As diffusers' <c>randn_tensor</c>, the noise is drawn on
    /// the generator's device and moved to the posterior's, so a CPU generator gives the same latents on any device.
    /// </summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var noiseDevice = generator?.device ?? Mean.device;
        var noise = randn(Mean.shape, dtype: Mean.dtype, device: noiseDevice, generator: generator).to(Mean.device);
        return (Mean + Std * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The most likely latent, i.e. the mean (a copy the caller owns).</summary>
    public Tensor Mode() => Mean.clone();

    /// <summary>The posterior moved to <paramref name="device"/> (new tensors, this one is left as is).</summary>
    public DiagonalGaussianDistribution To(Device device) =>
        new(Mean.to(device).clone(), Std.to(device).clone(), _logVar?.to(device).clone());

    /// <summary>Moves the tensors to the dispose scope outside the current one (as a forward's result); returns this.</summary>
    public DiagonalGaussianDistribution MoveToOuterDisposeScope()
    {
        Mean.MoveToOuterDisposeScope();
        Std.MoveToOuterDisposeScope();
        _logVar?.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Mean.Dispose();
        Std.Dispose();
        _logVar?.Dispose();
    }
}
