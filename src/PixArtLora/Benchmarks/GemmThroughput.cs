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
    /// <summary>FLOP/s of the fastest product: what this process can get from a GEMM (the MFU denominator; other
    /// processes' load only ever slows a product down, so the best of several is the least noisy estimate).</summary>
    public double FlopsPerSecond => FlopsPerProduct / Timing.Min;

    /// <summary>FLOP/s at the median time.</summary>
    public double MedianFlopsPerSecond => FlopsPerProduct / Timing.Median;
}

/// <summary>
/// Measures what this process gets from a large matrix product in a given dtype on a given device, timed in the same
/// run as the model so that MFU compares the model with the machine as it is right now (same threads, same load).
/// </summary>
public static class GemmThroughput
{
    /// <summary>
    /// Times <paramref name="repeats"/> products of two random <paramref name="size"/>² matrices (after
    /// <paramref name="warmup"/> untimed ones), written in place into one preallocated result so that allocation and
    /// page faults are not timed. 2048 is large enough to be compute-bound on a CPU (~30 ms per product on two cores
    /// in bf16, ~110 ms in fp32).
    /// </summary>
    public static GemmProbe Measure(ScalarType dtype, Device device, int size = 2048, int warmup = 3, int repeats = 10)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "matrix size must be > 0");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(1234, device);
        var a = randn(new long[] { size, size }, dtype: float32, device: device, generator: generator).to(dtype);
        var b = randn(new long[] { size, size }, dtype: float32, device: device, generator: generator).to(dtype);
        var c = zeros(new long[] { size, size }, dtype: dtype, device: device);
        var timing = StepTimer.Measure(() =>
        {
            c.addmm_(a, b, beta: 0, alpha: 1);   // c = a·b, in place
            if (device.type == DeviceType.CUDA) cuda.synchronize(device);
        }, warmup, repeats);
        return new GemmProbe(size, dtype, 2.0 * size * size * size, timing);
    }
}
