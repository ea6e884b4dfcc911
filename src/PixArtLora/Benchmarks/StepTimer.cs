using System.Diagnostics;

namespace PixArtLora.Benchmarks;

/// <summary>
/// Wall-clock seconds of repeated runs (warm-up runs excluded) and the CPU seconds this process spent in them.
/// CPU time is reported beside wall time because on a shared machine the two part ways: wall time grows with other
/// processes' load, CPU time much less.
/// </summary>
public sealed record TimingStats(IReadOnlyList<double> Seconds, IReadOnlyList<double> CpuSeconds)
{
    public double Median => MedianOf(Seconds);
    public double Min => Seconds.Min();
    public double CpuMedian => MedianOf(CpuSeconds);
    /// <summary>Minor page faults of this process during the timed runs (warm-up excluded): fresh memory the kernel mapped and zeroed.</summary>
    public long MinorPageFaults { get; init; }

    /// <summary>The middle value (mean of the two middle values for an even count).</summary>
    public static double MedianOf(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values", nameof(values));
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>Times an action: <c>warmup</c> untimed runs, then <c>repeats</c> timed ones.</summary>
public static class StepTimer
{
    /// <summary>
    /// Runs <paramref name="step"/> <paramref name="warmup"/> + <paramref name="repeats"/> times and returns the timed
    /// runs; <paramref name="afterEach"/> (untimed, its page faults not counted) runs after each timed run with its index.
    /// </summary>
    public static TimingStats Measure(Action step, int warmup, int repeats, Action<int>? afterEach = null)
    {
        if (warmup < 0) throw new ArgumentOutOfRangeException(nameof(warmup), warmup, "warm-up runs must be >= 0");
        if (repeats < 1) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "timed runs must be >= 1");
        for (int i = 0; i < warmup; i++) step();
        var wall = new double[repeats];
        var cpu = new double[repeats];
        using var process = Process.GetCurrentProcess();
        long faultsBefore = ProcessMemory.MinorPageFaults();
        for (int i = 0; i < repeats; i++)
        {
            process.Refresh();
            var cpuStart = process.TotalProcessorTime;
            long start = Stopwatch.GetTimestamp();
            step();
            wall[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            process.Refresh();
            cpu[i] = (process.TotalProcessorTime - cpuStart).TotalSeconds;
            if (afterEach is null) continue;
            long faultsAtPause = ProcessMemory.MinorPageFaults();
            afterEach(i);
            faultsBefore += ProcessMemory.MinorPageFaults() - faultsAtPause;
        }
        return new TimingStats(wall, cpu) { MinorPageFaults = ProcessMemory.MinorPageFaults() - faultsBefore };
    }
}
