using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Runtime;

/// <summary>
/// Process-wide settings of the native heap that libtorch's CPU tensors live in (Linux/glibc only), and transparent
/// huge pages for model weights. Measured on the 2-core reference machine (a VM, where a 4 KB page fault is
/// expensive): with glibc's defaults every tensor above the mmap threshold goes back to the kernel when freed and
/// comes back as fresh 4 KB pages that the kernel must fault in and zero on first touch.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><see cref="Apply"/>, mallopt: no mmap for large blocks and no trimming of the heap top, so freed activations
/// stay mapped and the next step reuses them without faults. The price is that RSS does not shrink after a peak —
/// the same peak a training loop reaches every step anyway.</item>
/// <item><see cref="AdviseHugePages"/>: weights are advised as huge pages before they are first written, so that
/// loading a checkpoint faults 2 MB at a time. The 2.4 GB fp32 Σ transformer loads in 5.0–6.6 s in a fresh process
/// that way, in 10.4–16.5 s without (reading the file into a fresh buffer: 9.1 s). Only weights: libtorch's own switch for this
/// (<c>THP_MEM_ALLOC_ENABLE=1</c>) applies it to every allocation of 2 MB or more, which loaded as fast but made
/// bf16 training steps slower and their peak RSS 0.7–1 GB higher (Σ-512, 512 px, alternating runs: LoRA 7.32 and
/// 6.93 s per step against 7.03 and 6.25 without it, full 10.60 and 12.12 against 10.66 and 9.23, the GEMM-matched
/// MFU lower in all four pairs). It is left to the user's environment.</item>
/// </list>
/// </remarks>
public static class CpuAllocatorTuning
{
    const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;
    const int MADV_HUGEPAGE = 14;
    const long HugePageBytes = 2L << 20;

    [DllImport("libc", EntryPoint = "mallopt")] static extern int MallOpt(int parameter, int value);
    [DllImport("libc", EntryPoint = "madvise")] static extern int MAdvise(nint address, nuint length, int advice);
    [DllImport("libc", EntryPoint = "malloc_trim")] static extern int MallocTrim(nuint pad);

    /// <summary>True once <see cref="Apply"/> has run successfully in this process.</summary>
    public static bool Applied { get; private set; }

    /// <summary>
    /// Applies the heap settings and enables <see cref="AdviseHugePages"/>, unless <c>PIXARTLORA_ALLOCATOR=default</c>
    /// is set. Returns whether anything was applied (false off Linux/glibc).
    /// </summary>
    public static bool Apply()
    {
        if (Applied) return true;
        if (!OperatingSystem.IsLinux() || OptedOut) return false;
        try
        {
            MallOpt(M_MMAP_MAX, 0);
            MallOpt(M_TRIM_THRESHOLD, int.MaxValue);
            Applied = true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
        return true;
    }

    /// <summary>
    /// Gives the heap's free memory back to the kernel (glibc <c>malloc_trim</c>: the top of the heap and the whole free
    /// pages inside it). Call it after dropping a large model that nothing will reuse the memory of — T5-XXL once captions
    /// are encoded holds 9.5 GB in bf16 — because <see cref="Apply"/> turns automatic trimming off and the freed memory would
    /// otherwise stay resident for the rest of the process. A no-op unless <see cref="Apply"/> has run (glibc's defaults
    /// already return large blocks on free). Returns whether memory was released.
    /// </summary>
    public static bool ReturnFreeMemory()
    {
        if (!Applied) return false;
        try { return MallocTrim(0) == 1; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    static bool OptedOut => string.Equals(Environment.GetEnvironmentVariable("PIXARTLORA_ALLOCATOR"), "default", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Advises the kernel to back <paramref name="tensor"/>'s memory with transparent huge pages: the whole 2 MB pages
    /// inside it (its edges keep 4 KB pages). Effective only before the memory is first written; a no-op unless
    /// <see cref="Apply"/> has run, and for tensors under 2 MB, non-CPU or non-contiguous ones. Returns whether advice
    /// was given.
    /// </summary>
    public static bool AdviseHugePages(Tensor tensor)
    {
        if (!Applied || tensor.device_type != DeviceType.CPU || !tensor.is_contiguous()) return false;
        long bytes = tensor.numel() * tensor.element_size();
        if (bytes < HugePageBytes) return false;
        long start = FirstByte(tensor);
        long first = (start + HugePageBytes - 1) & ~(HugePageBytes - 1), end = (start + bytes) & ~(HugePageBytes - 1);
        if (end <= first) return false;
        try { return MAdvise((nint)first, (nuint)(end - first), MADV_HUGEPAGE) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>Address of the first element (through a one-element view: <c>bytes</c> spans at most 2 GB).</summary>
    internal static unsafe long FirstByte(Tensor tensor)
    {
        using var flat = tensor.view(-1);
        using var first = flat.narrow(0, 0, 1);
        fixed (byte* p = first.bytes) return (long)p;
    }
}
