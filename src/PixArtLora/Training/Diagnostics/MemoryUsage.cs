using System.Globalization;
using System.Runtime.InteropServices;

namespace PixArtLora.Training.Diagnostics;

/// <summary>Memory used by an accelerator, as the driver reports it.</summary>
/// <param name="DeviceIndex">The CUDA device index.</param>
/// <param name="UsedBytes">Memory in use on the device (all processes: NVML reports per device).</param>
/// <param name="TotalBytes">The device's memory.</param>
public sealed record DeviceMemory(int DeviceIndex, long UsedBytes, long TotalBytes);

/// <summary>
/// Process and accelerator memory. Resident memory comes from /proc/self/status (VmRSS now, VmHWM the
/// peak since start). TorchSharp 0.107 exposes no CUDA allocator statistics, so device memory is read
/// from NVML (libnvidia-ml, installed with every NVIDIA driver); without a driver it is simply absent.
/// </summary>
public static class MemoryUsage
{
    /// <summary>Peak resident set size of this process in bytes (VmHWM), or null off Linux.</summary>
    public static long? PeakResidentBytes() => ReadStatusKilobytes("VmHWM:") * 1024;

    /// <summary>Current resident set size of this process in bytes (VmRSS), or null off Linux.</summary>
    public static long? ResidentBytes() => ReadStatusKilobytes("VmRSS:") * 1024;

    static long? ReadStatusKilobytes(string field)
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            // "VmHWM:	  123456 kB"
            var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb)) return kb;
        }
        return null;
    }

    /// <summary>The CUDA ordinal <paramref name="device"/> names (<c>cuda</c> alone: 0, the current device unless changed), or null for a non-CUDA device.</summary>
    public static int? CudaOrdinal(TorchSharp.torch.Device device) =>
        device.type == TorchSharp.DeviceType.CUDA ? Math.Max(0, (int)device.index) : null;

    /// <summary>
    /// Used and total memory of the device that CUDA calls <paramref name="cudaOrdinal"/> (what <c>cuda:N</c> names),
    /// or null when NVML is not available or the device cannot be matched to NVML's.
    /// </summary>
    public static DeviceMemory? CudaDeviceMemory(int cudaOrdinal = 0) =>
        NvmlIndexOf(cudaOrdinal) is int index && Nvml.TryGetMemory(index) is { } m ? m with { DeviceIndex = cudaOrdinal } : null;

    /// <summary>
    /// NVML's index of CUDA device <paramref name="cudaOrdinal"/>. The two differ when CUDA_VISIBLE_DEVICES hides or
    /// reorders devices, or when CUDA orders them fastest first (its default) on a mixed machine, while NVML always counts
    /// every device in PCI order; so the device is matched by its PCI bus id, which the driver API reports after applying
    /// both. Without the driver API the ordinal is mapped through CUDA_VISIBLE_DEVICES alone.
    /// </summary>
    static int? NvmlIndexOf(int cudaOrdinal) =>
        cudaOrdinal < 0 ? null : NvmlIndices.GetOrAdd(cudaOrdinal, static ordinal => FindNvmlIndex(ordinal));

    // Looked up once per ordinal: the benchmarks poll device memory every few milliseconds.
    static readonly System.Collections.Concurrent.ConcurrentDictionary<int, int?> NvmlIndices = new();

    static int? FindNvmlIndex(int cudaOrdinal)
    {
        if (CudaDriver.PciBusId(cudaOrdinal) is string busId && Nvml.IndexOfPciBusId(busId) is int byBus) return byBus;
        return NvmlIndexFromVisibleDevices(cudaOrdinal, Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"));
    }

    /// <summary>
    /// Maps a CUDA ordinal through a CUDA_VISIBLE_DEVICES value: unset or empty leaves it as is, a list of indices picks
    /// the ordinal's entry; anything else (device UUIDs, MIG instances, an ordinal past the list) gives null rather than
    /// another device's memory.
    /// </summary>
    public static int? NvmlIndexFromVisibleDevices(int cudaOrdinal, string? visibleDevices)
    {
        if (cudaOrdinal < 0) return null;
        if (string.IsNullOrWhiteSpace(visibleDevices)) return cudaOrdinal;
        var entries = visibleDevices.Split(',', StringSplitOptions.TrimEntries);
        if (cudaOrdinal >= entries.Length) return null;
        return int.TryParse(entries[cudaOrdinal], NumberStyles.None, CultureInfo.InvariantCulture, out int index) ? index : null;
    }

    /// <summary>Formats a byte count as MiB/GiB for logs.</summary>
    public static string Format(long bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F2} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F0} MiB");

    static class Nvml
    {
        [StructLayout(LayoutKind.Sequential)]
        struct NvmlMemory { public ulong Total, Free, Used; }

        [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlInit_v2")] static extern int Init();
        [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetHandleByIndex_v2")] static extern int GetHandle(uint index, out IntPtr device);
        [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetMemoryInfo")] static extern int GetMemory(IntPtr device, out NvmlMemory memory);
        [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetHandleByPciBusId_v2")] static extern int GetHandleByPciBusId([MarshalAs(UnmanagedType.LPStr)] string busId, out IntPtr device);
        [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetIndex")] static extern int GetIndex(IntPtr device, out uint index);

        static readonly Lazy<bool> Initialised = new(() =>
        {
            try { return Init() == 0; }
            catch (DllNotFoundException) { return false; }
            catch (EntryPointNotFoundException) { return false; }
        });

        public static DeviceMemory? TryGetMemory(int index)
        {
            if (index < 0 || !Initialised.Value) return null;
            try
            {
                if (GetHandle((uint)index, out var handle) != 0) return null;
                if (GetMemory(handle, out var mem) != 0) return null;
                return new DeviceMemory(index, (long)mem.Used, (long)mem.Total);
            }
            catch (DllNotFoundException) { return null; }
            catch (EntryPointNotFoundException) { return null; }
        }

        public static int? IndexOfPciBusId(string busId)
        {
            if (!Initialised.Value) return null;
            try
            {
                if (GetHandleByPciBusId(busId, out var handle) != 0) return null;
                return GetIndex(handle, out uint index) == 0 ? (int)index : null;
            }
            catch (EntryPointNotFoundException) { return null; }
        }
    }

    /// <summary>The CUDA driver API (libcuda, installed with the driver), for the PCI bus id of a CUDA ordinal.</summary>
    static class CudaDriver
    {
        [DllImport("libcuda.so.1", EntryPoint = "cuInit")] static extern int Init(uint flags);
        [DllImport("libcuda.so.1", EntryPoint = "cuDeviceGet")] static extern int GetDevice(out int device, int ordinal);
        [DllImport("libcuda.so.1", EntryPoint = "cuDeviceGetPCIBusId")] static extern int GetPciBusId(byte[] busId, int length, int device);

        static readonly Lazy<bool> Initialised = new(() =>
        {
            try { return Init(0) == 0; }
            catch (DllNotFoundException) { return false; }
            catch (EntryPointNotFoundException) { return false; }
        });

        public static string? PciBusId(int ordinal)
        {
            if (!Initialised.Value) return null;
            try
            {
                if (GetDevice(out int device, ordinal) != 0) return null;
                var buffer = new byte[64];   // "0000:00:00.0" and a terminating zero
                if (GetPciBusId(buffer, buffer.Length, device) != 0) return null;
                int end = Array.IndexOf(buffer, (byte)0);
                return System.Text.Encoding.ASCII.GetString(buffer, 0, end < 0 ? buffer.Length : end);
            }
            catch (EntryPointNotFoundException) { return null; }
        }
    }
}

/// <summary>
/// Keeps the peaks the training log reports: peak RSS (the kernel tracks it, VmHWM) and the highest device
/// memory seen at the moments <see cref="Sample"/> ran (NVML has no peak counter, so sample after each step).
/// </summary>
public sealed class PeakMemoryTracker
{
    readonly int? _cudaDevice;

    /// <param name="cudaDevice">CUDA device index to sample, or null on CPU runs.</param>
    public PeakMemoryTracker(int? cudaDevice = null) => _cudaDevice = cudaDevice;

    public long? PeakResidentBytes { get; private set; }
    public long? PeakDeviceUsedBytes { get; private set; }

    /// <summary>Reads the current values and keeps the maxima.</summary>
    public void Sample()
    {
        var rss = MemoryUsage.PeakResidentBytes();
        if (rss is long r) PeakResidentBytes = Math.Max(PeakResidentBytes ?? 0, r);
        if (_cudaDevice is int d && MemoryUsage.CudaDeviceMemory(d) is { } mem)
            PeakDeviceUsedBytes = Math.Max(PeakDeviceUsedBytes ?? 0, mem.UsedBytes);
    }

    /// <summary>The peaks as scalars for the metrics log (bytes), omitting those not available.</summary>
    public IReadOnlyDictionary<string, double> ToMetrics()
    {
        var m = new Dictionary<string, double>();
        if (PeakResidentBytes is long r) m["memory/peak_rss_bytes"] = r;
        if (PeakDeviceUsedBytes is long d) m["memory/peak_cuda_used_bytes"] = d;
        return m;
    }
}
