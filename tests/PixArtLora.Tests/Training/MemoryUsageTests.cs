using PixArtLora.Training.Diagnostics;

namespace PixArtLora.Tests.Training;

[CollectionDefinition("Memory measurements", DisableParallelization = true)]
public class MemoryMeasurementsCollection { }

/// <summary>Runs alone so that other tests' allocations do not move the process's memory meanwhile.</summary>
[Collection("Memory measurements")]
public class MemoryUsageTests
{
    [Fact]
    public void ResidentMemoryFollowsAllocations()
    {
        long before = MemoryUsage.ResidentBytes()!.Value;
        const int size = 256 << 20;
        var block = GC.AllocateUninitializedArray<byte>(size);
        Array.Fill(block, (byte)1); // touch every page so it becomes resident
        long during = MemoryUsage.ResidentBytes()!.Value;
        long peak = MemoryUsage.PeakResidentBytes()!.Value;
        GC.KeepAlive(block);

        Assert.True(during - before > size * 0.8, $"RSS grew by {MemoryUsage.Format(during - before)} after touching 256 MiB");
        Assert.True(peak >= during, $"peak {peak} below current {during}");

        var tracker = new PeakMemoryTracker();
        tracker.Sample();
        Assert.True(tracker.PeakResidentBytes >= during);
        Assert.True(tracker.ToMetrics().ContainsKey("memory/peak_rss_bytes"));
        Assert.False(tracker.ToMetrics().ContainsKey("memory/peak_cuda_used_bytes"));
    }

    [Fact]
    public void CudaMemoryIsAbsentWithoutADriverAndFormatsReadably()
    {
        if (!File.Exists("/proc/driver/nvidia/version")) Assert.Null(MemoryUsage.CudaDeviceMemory(0));
        else Assert.True(MemoryUsage.CudaDeviceMemory(0)!.TotalBytes > 0);
        Assert.Equal("512 MiB", MemoryUsage.Format(512L << 20));
        Assert.Equal("1.50 GiB", MemoryUsage.Format(3L << 29));
    }
}
