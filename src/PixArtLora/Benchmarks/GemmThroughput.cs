using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>What one square matrix product achieved: the denominator of model FLOP utilisation.</summary>
/// <param name="Size">Side of the square matrices.</param>
/// <param name="Dtype">Element type of the product.</param>
/// <param name="FlopsPerProduct">2·size³.</param>
/// <param name="Timing">Seconds per product.</param>
public sealed record GemmProbe(int Size, ScalarType Dtype, double FlopsPerProduct, TimingStats Timing)
{
    /// <summary>FLOP/s at the median time.</summary>
    public double FlopsPerSecond => FlopsPerProduct / Timing.Median;

    /// <summary>FLOP/s of the fastest product.</summary>
    public double BestFlopsPerSecond => FlopsPerProduct / Timing.Min;
}

/// <summary>
/// Measures what this process gets from a large matrix product in a given dtype on a given device, timed in the same
/// run as the model so that MFU compares the model with the machine as it is right now (same threads, same load).
/// </summary>
public static class GemmThroughput
{
    /// <summary>
    /// Times <paramref name="repeats"/> products of two random <paramref name="size"/>² matrices (after
    /// <paramref name="warmup"/> untimed ones). 2048 is large enough to be compute-bound on a CPU and takes ~0.1 s on
    /// two cores in bf16.
    /// </summary>
    public static GemmProbe Measure(ScalarType dtype, Device device, int size = 2048, int warmup = 2, int repeats = 5)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "matrix size must be > 0");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(1234, device);
        var a = randn(new long[] { size, size }, dtype: float32, device: device, generator: generator).to(dtype);
        var b = randn(new long[] { size, size }, dtype: float32, device: device, generator: generator).to(dtype);
        var timing = StepTimer.Measure(() =>
        {
            using var c = a.mm(b);
            if (device.type == DeviceType.CUDA) cuda.synchronize(device);
        }, warmup, repeats);
        return new GemmProbe(size, dtype, 2.0 * size * size * size, timing);
    }
}
