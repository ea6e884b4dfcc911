using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// Where a stochastic sampler's Gaussian noise comes from. Normally a seeded <see cref="torch.Generator"/> (a
/// Generator converts implicitly), so the same seed gives the same image; tests replay the exact tensors a
/// reference implementation drew. Samplers draw in the same order, count and shapes as their reference
/// (e.g. DDPM skips the draw at t = 0, IDDPM draws at every step), so replayed reference noise lines up.
/// </summary>
public abstract class NoiseSource
{
    /// <summary>The next standard-normal tensor of the given shape, dtype and device.</summary>
    public abstract Tensor Next(long[] shape, ScalarType dtype, Device device);

    /// <summary>How many tensors have been drawn so far.</summary>
    public int Drawn { get; protected set; }

    /// <summary>Draws from <paramref name="generator"/> (on the generator's device, then moved, like diffusers' randn_tensor).</summary>
    public static NoiseSource FromGenerator(Generator generator) => new GeneratorNoise(generator);

    /// <summary>Replays <paramref name="draws"/> in order; drawing more than given, or a different shape, throws.</summary>
    public static NoiseSource Replay(IEnumerable<Tensor> draws) => new ReplayNoise(draws.ToList());

    /// <summary>Lets a seeded generator be passed wherever a noise source is expected.</summary>
    public static implicit operator NoiseSource(Generator generator) => FromGenerator(generator);

    sealed class GeneratorNoise(Generator generator) : NoiseSource
    {
        public override Tensor Next(long[] shape, ScalarType dtype, Device device)
        {
            Drawn++;
            var drawn = randn(shape, dtype: dtype, device: generator.device, generator: generator);
            return generator.device.type == device.type && generator.device.index == device.index ? drawn : drawn.to(device);
        }
    }

    sealed class ReplayNoise(List<Tensor> draws) : NoiseSource
    {
        public override Tensor Next(long[] shape, ScalarType dtype, Device device)
        {
            if (Drawn >= draws.Count)
                throw new InvalidOperationException($"noise replay: draw {Drawn + 1} requested but only {draws.Count} tensors were given");
            var t = draws[Drawn];
            if (!t.shape.SequenceEqual(shape))
                throw new InvalidOperationException(
                    $"noise replay: draw {Drawn + 1} has shape [{string.Join(", ", t.shape)}], the sampler asked for [{string.Join(", ", shape)}]");
            Drawn++;
            return t.to(dtype, device, copy: true);
        }
    }
}
