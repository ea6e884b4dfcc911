using PixArtLora.Training.Diagnostics;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>A CUDA device's memory over a benchmark's measured part, as NVML reports it (whole device, every process).</summary>
/// <param name="UsedBeforeBytes">In use when the watch started (CUDA context, other processes, earlier tensors).</param>
/// <param name="PeakUsedBytes">The highest value polled while it ran: a lower bound of the true peak.</param>
/// <param name="TotalBytes">The device's memory.</param>
public sealed record DeviceMemoryFigures(long UsedBeforeBytes, long PeakUsedBytes, long TotalBytes);

/// <summary>
/// Polls NVML every few milliseconds while a benchmark runs on CUDA, since TorchSharp 0.107 exposes none of libtorch's
/// allocator statistics. The figures include the CUDA context and the memory libtorch's caching allocator holds but
/// does not use, as <c>nvidia-smi</c> shows them; on CPU, or without NVML, there are none.
/// </summary>
public sealed class DeviceMemoryWatch : IDisposable
{
    readonly DeviceMemory _before;
    readonly BackgroundPeakSampler _sampler;

    DeviceMemoryWatch(int ordinal, DeviceMemory before)
    {
        _before = before;
        _sampler = new BackgroundPeakSampler(() => MemoryUsage.CudaDeviceMemory(ordinal)?.UsedBytes, TimeSpan.FromMilliseconds(5));
    }

    /// <summary>Starts watching <paramref name="device"/>; null when it is not a CUDA device or NVML cannot read it.</summary>
    public static DeviceMemoryWatch? Start(Device device)
    {
        return MemoryUsage.CudaOrdinal(device) is int ordinal && MemoryUsage.CudaDeviceMemory(ordinal) is { } before
            ? new DeviceMemoryWatch(ordinal, before)
            : null;
    }

    /// <summary>Stops polling and returns what it saw.</summary>
    public DeviceMemoryFigures Stop()
    {
        _sampler.Dispose();
        return new DeviceMemoryFigures(_before.UsedBytes, Math.Max(_sampler.Peak ?? 0, _before.UsedBytes), _before.TotalBytes);
    }

    public void Dispose() => _sampler.Dispose();
}
