using PixArtLora.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>
/// One seeded CPU generator per image of a batch, as diffusers does when given a list of generators: the initial
/// latents of image i come from its own generator, and so does every later draw of a stochastic sampler for row i.
/// An image therefore depends only on its seed, not on which other images share its batch.
/// </summary>
public sealed class PerImageNoise : NoiseSource, IDisposable
{
    readonly Generator[] _generators;

    /// <summary>Generators seeded with <paramref name="seeds"/>, one per batch row.</summary>
    public PerImageNoise(IReadOnlyList<long> seeds)
    {
        if (seeds.Count == 0) throw new ArgumentException("at least one seed is needed", nameof(seeds));
        // Drawn on the CPU on every device, so that a seed gives the same image on CPU and GPU (up to arithmetic).
        _generators = seeds.Select(s => new Generator(unchecked((ulong)s), CPU)).ToArray();
    }

    /// <summary>Number of rows (images).</summary>
    public int Count => _generators.Length;

    /// <summary>
    /// Standard-normal [B, ...] with row i drawn from generator i (B = the number of seeds). A doubled batch (the
    /// official guidance convention) reuses the rows' draws for both halves.
    /// </summary>
    public override Tensor Next(long[] shape, ScalarType dtype, Device device)
    {
        if (shape.Length == 0 || shape[0] % _generators.Length != 0)
            throw new ArgumentException($"noise of shape [{string.Join(", ", shape)}] does not split into {_generators.Length} images");
        Drawn++;
        using var scope = NewDisposeScope();
        var rowShape = shape.ToArray();
        rowShape[0] = 1;
        var rows = _generators.Select(g => randn(rowShape, dtype: float32, generator: g)).ToArray();
        var noise = cat(rows, 0);
        if (shape[0] != _generators.Length)
        {
            var repeats = Enumerable.Repeat(1L, shape.Length).ToArray();
            repeats[0] = shape[0] / _generators.Length;
            noise = noise.repeat(repeats);
        }
        return noise.to(dtype, device).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var g in _generators) g.Dispose();
    }
}
