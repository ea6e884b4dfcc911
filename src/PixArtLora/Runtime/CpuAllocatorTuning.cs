using System.Runtime.InteropServices;

namespace PixArtLora.Runtime;

/// <summary>
/// Process-wide settings of the native heap that libtorch's CPU tensors live in (Linux/glibc only). Measured on the
/// 2-core reference machine (a VM, where a 4 KB page fault is expensive): with glibc's defaults every tensor above
/// the mmap threshold goes back to the kernel when freed and comes back as fresh 4 KB pages that the kernel must fault
/// in and zero on first touch. Loading the 2.4 GB fp32 Σ transformer took 8.6 s that way (reading the file into a
/// fresh buffer: 9.7 s) and 1.1 s with these settings (0.4 s); steady-state training steps are unaffected, because
/// libtorch reuses its memory within a step either way. The <c>lora</c> command applies them at start-up.
/// </summary>
/// <remarks>
/// Two settings, both applied by <see cref="Apply"/>, which must run before the first tensor is allocated:
/// <list type="bullet">
/// <item><c>THP_MEM_ALLOC_ENABLE=1</c>: libtorch (c10 alloc_cpu) aligns allocations of 2 MB and more to 2 MB and
/// advises transparent huge pages for them, so what is faulted is faulted 2 MB at a time. It is read from the native
/// environment once, at the first allocation; .NET's Environment.SetEnvironmentVariable does not reach the native
/// environment, hence setenv.</item>
/// <item>mallopt: no mmap for large blocks and no trimming of the heap top, so freed activations stay mapped and the
/// next step reuses them without faults. The price is that RSS does not shrink after a peak — the same peak a
/// training loop reaches every step anyway.</item>
/// </list>
/// </remarks>
public static class CpuAllocatorTuning
{
    const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;

    [DllImport("libc", EntryPoint = "setenv")] static extern int SetEnv(string name, string value, int overwrite);
    [DllImport("libc", EntryPoint = "mallopt")] static extern int MallOpt(int parameter, int value);

    /// <summary>True once <see cref="Apply"/> has run successfully in this process.</summary>
    public static bool Applied { get; private set; }

    /// <summary>
    /// Applies both settings unless <c>PIXARTLORA_ALLOCATOR=default</c> is set; an explicit
    /// <c>THP_MEM_ALLOC_ENABLE</c> in the environment is left as the user set it. Returns whether anything was applied
    /// (false off Linux/glibc).
    /// </summary>
    public static bool Apply()
    {
        if (Applied) return true;
        if (!OperatingSystem.IsLinux()) return false;
        if (string.Equals(Environment.GetEnvironmentVariable("PIXARTLORA_ALLOCATOR"), "default", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            SetEnv("THP_MEM_ALLOC_ENABLE", "1", overwrite: 0);
            MallOpt(M_MMAP_MAX, 0);
            MallOpt(M_TRIM_THRESHOLD, int.MaxValue);
            Applied = true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
        return true;
    }
}
