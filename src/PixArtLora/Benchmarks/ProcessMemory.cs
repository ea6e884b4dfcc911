using PixArtLora.Training.Diagnostics;

namespace PixArtLora.Benchmarks;

/// <summary>Peak resident memory of phases of this process (Linux): reset the kernel's high-water mark, run, read it.</summary>
public static class ProcessMemory
{
    /// <summary>
    /// Resets the peak resident set size (VmHWM) to the current one by writing 5 to /proc/self/clear_refs
    /// (Linux ≥ 4.0), so that a later <see cref="PeakResidentBytes"/> covers only what ran since. Returns false where
    /// that is not possible (then the peak covers the whole process).
    /// </summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException) { return false; }
    }

    /// <summary>Peak resident bytes since start or the last <see cref="ResetPeak"/> (0 off Linux).</summary>
    public static long PeakResidentBytes() => MemoryUsage.PeakResidentBytes() ?? 0;

    /// <summary>Resident bytes now (0 off Linux).</summary>
    public static long ResidentBytes() => MemoryUsage.ResidentBytes() ?? 0;

    /// <summary>Minor page faults of this process so far (field 10 of /proc/self/stat), 0 off Linux.</summary>
    public static long MinorPageFaults()
    {
        try
        {
            string stat = File.ReadAllText("/proc/self/stat");
            // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[7], System.Globalization.CultureInfo.InvariantCulture);   // field 10 = 3rd + 7
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { return 0; }
    }

    /// <summary>Returns freed managed memory and gives the native heap a chance to shrink before a measurement.</summary>
    public static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
