using System.Globalization;
using PixArtLora.Runtime;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Runtime;

/// <summary>Huge-page advice for weights, checked against what the kernel records for the mapping.</summary>
public class CpuAllocatorTuningTests
{
    [Fact]
    public void WeightsOfTwoMegabytesOrMoreAreAdvisedAsHugePages()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(CpuAllocatorTuning.Apply());   // the heap settings are harmless to the rest of the test run
        using var weight = empty(4L << 20, dtype: ScalarType.Float32);   // 16 MB: several whole 2 MB pages inside
        Assert.True(CpuAllocatorTuning.AdviseHugePages(weight));
        // A 2 MB-aligned address inside the tensor now lies in a mapping whose VmFlags carry "hg" (MADV_HUGEPAGE).
        long start = CpuAllocatorTuning.FirstByte(weight), aligned = (start + (2L << 20) - 1) & ~((2L << 20) - 1);
        Assert.Contains("hg", VmFlagsAt(aligned));

        using var small = empty(1000, dtype: ScalarType.Float32);
        Assert.False(CpuAllocatorTuning.AdviseHugePages(small));
        using var strided = empty(new long[] { 2048, 2048 }, dtype: ScalarType.Float32).t();
        Assert.False(CpuAllocatorTuning.AdviseHugePages(strided));
    }

    /// <summary>The VmFlags of the mapping in /proc/self/smaps that contains <paramref name="address"/>.</summary>
    static string[] VmFlagsAt(long address)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            if (dash > 0 && line.Length > dash + 1 && line.IndexOf(' ') > dash
                && long.TryParse(line[..dash], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long from)
                && long.TryParse(line[(dash + 1)..line.IndexOf(' ')], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long to))
                inside = from <= address && address < to;
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
                return line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        }
        throw new InvalidOperationException($"no mapping in /proc/self/smaps contains 0x{address:x}");
    }
}
