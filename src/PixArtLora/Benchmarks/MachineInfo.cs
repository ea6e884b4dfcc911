using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>What a benchmark ran on, so a number never travels without its machine and that machine's load.</summary>
/// <param name="Device">e.g. <c>cpu: AMD EPYC, 2 logical cores, 2 torch threads</c>.</param>
/// <param name="LoadAverage1m">The 1-minute load average when read (null off Linux). Above the core count, timings mostly measure other processes.</param>
public sealed record MachineInfo(string Device, int LogicalCores, int TorchThreads, double? LoadAverage1m, long MemoryBytes, string Os)
{
    /// <summary>Describes <paramref name="device"/> and reads the current load.</summary>
    public static MachineInfo Read(Device device)
    {
        string name = device.type == DeviceType.CPU ? $"cpu: {CpuModel()}" : device.ToString();
        return new MachineInfo(
            $"{name}, {Environment.ProcessorCount} logical cores, {get_num_threads()} torch threads",
            Environment.ProcessorCount, get_num_threads(), LoadAverage(), MemoryTotal(), RuntimeInformation.OSDescription);
    }

    /// <summary>The 1-minute load average from /proc/loadavg, or null.</summary>
    public static double? LoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line != null) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    static long MemoryTotal()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            if (line != null)
                return long.Parse(line["MemTotal:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
