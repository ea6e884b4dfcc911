using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// The denoising network as the sampling loop sees it: <paramref name="modelInput"/> is [B', C, ...] (already scaled
/// by the sampler) and <paramref name="timesteps"/> a float32 [B'] tensor of timestep values (integers, except Euler's
/// fractional ones); returns the prediction [B', C or 2C, ...]. With guidance, B' = 2B and rows [0, B) must be
/// evaluated with the conditional inputs and rows [B, 2B) with the unconditional (null-prompt) ones.
/// </summary>
public delegate Tensor DenoiserFn(Tensor modelInput, Tensor timesteps);

/// <summary>The progress of the sampling loop after a step: index, count, and the current sample.</summary>
public readonly record struct SamplingProgress(int StepIndex, int StepCount, Tensor Sample);

/// <summary>The reverse-diffusion loop shared by every sampler, with optional classifier-free guidance.</summary>
public static class SamplingLoop
{
    /// <summary>
    /// Runs <paramref name="sampler"/> from <paramref name="initialNoise"/> ([B, C, ...] standard normal; it is scaled
    /// by InitNoiseSigma here) to the final latents [B, C, ...]. Each step runs in its own dispose scope, so only the
    /// returned tensor outlives the call.
    /// </summary>
    /// <param name="sampler">Any sampler from <see cref="SamplerFactory"/>.</param>
    /// <param name="initialNoise">The starting latents.</param>
    /// <param name="model">The denoiser; see <see cref="DenoiserFn"/> for the batch layout under guidance.</param>
    /// <param name="noise">Noise for stochastic samplers (a seeded torch.Generator converts implicitly).</param>
    /// <param name="guidance">Classifier-free guidance, or null for a single conditional pass.</param>
    /// <param name="onStep">Called after every step (previews, progress bars); the sample is only valid during the call.</param>
    public static Tensor Run(ISampler sampler, Tensor initialNoise, DenoiserFn model, NoiseSource? noise = null,
                             ClassifierFreeGuidance? guidance = null, Action<SamplingProgress>? onStep = null)
    {
        long batch = initialNoise.shape[0], channels = initialNoise.shape[1];
        bool official = guidance?.Mode == GuidanceMode.Official;
        Tensor x;
        using (var start = NewDisposeScope())
        {
            // The official convention carries the latent batch twice (z.repeat(2, 1, 1, 1)).
            var z = official ? cat(new[] { initialNoise, initialNoise }, 0) : initialNoise;
            x = (z * sampler.InitNoiseSigma).MoveToOuterDisposeScope();
        }
        for (int i = 0; i < sampler.StepCount; i++)
        {
            using var scope = NewDisposeScope();
            var modelInput = sampler.ScaleModelInput(x, i);
            Tensor output;
            if (guidance == null)
                output = model(modelInput, Timesteps(sampler, i, batch, x.device));
            else
            {
                var half = official ? modelInput.narrow(0, 0, batch) : modelInput;
                var doubled = model(cat(new[] { half, half }, 0), Timesteps(sampler, i, 2 * batch, x.device));
                output = guidance.Combine(doubled, channels);
            }
            var next = sampler.Step(output, i, x, noise);
            x.Dispose();
            x = next.MoveToOuterDisposeScope();
            onStep?.Invoke(new SamplingProgress(i, sampler.StepCount, x));
        }
        if (!official) return x;
        var first = x.narrow(0, 0, batch).clone();
        x.Dispose();
        return first;
    }

    static Tensor Timesteps(ISampler sampler, int i, long batch, Device device) =>
        full(new[] { batch }, sampler.Timesteps[i], float32, device);
}
