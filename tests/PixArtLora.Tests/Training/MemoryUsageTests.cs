using System.IO.MemoryMappedFiles;
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
        var tracker = new PeakMemoryTracker();
        tracker.Sample();
        GC.KeepAlive(block);

        Assert.True(during - before > size * 0.8, $"RSS grew by {MemoryUsage.Format(during - before)} after touching 256 MiB");
        Assert.True(peak >= during, $"peak {peak} below current {during}");
        // Not ">= during": the kernel may reclaim this process's mapped file pages (library code) in between, and the
        // high-water mark follows RSS down when it never recorded the higher value. The block itself stays resident.
        Assert.True(tracker.PeakResidentBytes - before > size * 0.8, $"the tracker's peak {tracker.PeakResidentBytes} misses the 256 MiB block");
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

    [Fact]
    public void BackgroundSamplerCatchesAPeakThatIsGoneBeforeItStops()
    {
        // Shared anonymous memory leaves RSS as soon as it is unmapped, whatever the heap's settings.
        const int size = 256 << 20;
        long before = MemoryUsage.ResidentBytes()!.Value;
        using var sampler = new BackgroundPeakSampler(MemoryUsage.ResidentBytes, TimeSpan.FromMilliseconds(2));
        using (var mapped = MemoryMappedFile.CreateNew(null, size))
        using (var view = mapped.CreateViewAccessor())
        {
            for (long offset = 0; offset < size; offset += 4096) view.Write(offset, (byte)1);
            Thread.Sleep(200);
        }
        long after = MemoryUsage.ResidentBytes()!.Value;
        sampler.Dispose();

        Assert.True(sampler.Samples > 3, $"only {sampler.Samples} readings in over 200 ms");
        Assert.True(sampler.Peak - before > size * 0.8, $"peak {MemoryUsage.Format(sampler.Peak!.Value - before)} above the start, after touching 256 MiB");
        Assert.True(sampler.Peak - after > size * 0.5, $"RSS after unmapping ({MemoryUsage.Format(after)}) not below the peak ({MemoryUsage.Format(sampler.Peak!.Value)})");
    }

    [Fact]
    public void BackgroundSamplerWithoutReadingsHasNoPeak()
    {
        var sampler = new BackgroundPeakSampler(() => null, TimeSpan.FromMilliseconds(1));
        Thread.Sleep(20);
        sampler.Dispose();
        sampler.Dispose();
        Assert.Null(sampler.Peak);
        Assert.Equal(0, sampler.Samples);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackgroundPeakSampler(() => 1, TimeSpan.Zero));
    }

    [Theory]
    [InlineData(0, null, 0)]
    [InlineData(1, "", 1)]
    [InlineData(0, "3", 3)]
    [InlineData(1, "2, 5", 5)]
    [InlineData(2, "2,5", null)]          // past the list: CUDA has no such device
    [InlineData(0, "GPU-8e3f1c2a", null)] // a UUID: no index to map to without the driver
    [InlineData(0, "MIG-1", null)]
    [InlineData(-1, null, null)]
    public void CudaOrdinalsMapThroughCudaVisibleDevices(int ordinal, string? visible, int? expected) =>
        Assert.Equal(expected, MemoryUsage.NvmlIndexFromVisibleDevices(ordinal, visible));
}
