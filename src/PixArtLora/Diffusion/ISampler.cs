using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// A reverse-diffusion sampler with a fixed number of steps. The inference loop (see <see cref="SamplingLoop"/>)
/// starts from noise · <see cref="InitNoiseSigma"/> and for i = 0 .. StepCount-1 calls the model on
/// <see cref="ScaleModelInput"/>(x, i) at timestep <see cref="Timesteps"/>[i], then x = <see cref="Step"/>(output, i, x).
/// Steps must be taken in order; step 0 starts a new trajectory (clearing multistep history). Works on any latent
/// shape [B, C, ...]; the model output may carry C channels, or 2C with the learned variance in the second half
/// (PixArt's 8 output channels), which samplers that do not use it ignore.
/// </summary>
public interface ISampler : IDisposable
{
    /// <summary>The factory name of this sampler (dpm-solver, ddim, ddpm, euler, sa-solver, iddpm).</summary>
    string Name { get; }

    /// <summary>The training noise schedule the sampler inverts.</summary>
    NoiseSchedule Schedule { get; }

    /// <summary>Number of model evaluations (steps).</summary>
    int StepCount { get; }

    /// <summary>The timestep value the model is given at each step, in sampling order (integers, except Euler's float32 values).</summary>
    IReadOnlyList<double> Timesteps { get; }

    /// <summary>Scale of the initial noise (1 for variance-preserving samplers, the largest sigma for Euler).</summary>
    double InitNoiseSigma { get; }

    /// <summary>True when the model output must have 2C channels (eps and learned variance), as IDDPM requires.</summary>
    bool NeedsLearnedVariance { get; }

    /// <summary>The model input at step <paramref name="stepIndex"/> (identity except for Euler's 1/sqrt(σ²+1)).</summary>
    Tensor ScaleModelInput(Tensor sample, int stepIndex);

    /// <summary>
    /// One reverse step: the sample at the next (less noisy) timestep. <paramref name="noise"/> supplies the Gaussian
    /// draws of stochastic samplers (DDPM, DDIM with eta &gt; 0, SA-Solver, IDDPM, SDE variants); deterministic
    /// samplers accept null.
    /// </summary>
    Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource? noise = null);
}
