using System.Globalization;
using PixArtLora.Benchmarks;
using PixArtLora.Diffusion;
using PixArtLora.Inference;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Registry;
using PixArtLora.Runtime;
using PixArtLora.Training.Diagnostics;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Runtime;

/// <summary>
/// Huge-page advice for weights, checked against what the kernel records for the mapping, and the heap's free memory
/// going back on request. Runs alone: other tests' allocations would move the process's RSS meanwhile.
/// </summary>
[Collection("Memory measurements")]
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

    [Fact]
    public void FreedTensorMemoryStaysMappedUntilReturned()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(CpuAllocatorTuning.Apply());
        const long block = 16L << 20, count = 24;   // 384 MB in blocks that fit a thread's own glibc arena
        // Earlier tests leave freed memory resident (that is the setting under test); hand it back so these blocks are fresh.
        CpuAllocatorTuning.ReturnFreeMemory();
        long before = RssBytes();
        var blocks = Enumerable.Range(0, (int)count).Select(_ => ones(block / 4, dtype: ScalarType.Float32)).ToList();
        long held = RssBytes();
        foreach (var b in blocks) b.Dispose();
        long freed = RssBytes();
        Assert.True(CpuAllocatorTuning.ReturnFreeMemory());
        long returned = RssBytes();

        Assert.True(held - before > 0.8 * block * count, $"RSS grew by {(held - before) >> 20} MB for {(block * count) >> 20} MB of tensors");
        Assert.True(held - freed < 0.2 * block * count, $"freeing alone returned {(held - freed) >> 20} MB: the heap settings are not in effect");
        Assert.True(freed - returned > 0.6 * block * count, $"ReturnFreeMemory gave back only {(freed - returned) >> 20} MB");
    }

    [Fact]
    public void ReleasingThePipelinesTextEncoderGivesItsMemoryBack()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(CpuAllocatorTuning.Apply());
        // A T5 of the tiny transformer's caption width with a wide feed-forward: ~100 MB of weights, in 34 MB tensors.
        var config = TinyModels.TextEncoderConfig with { NumLayers = 1, DFf = 1 << 18 };
        var variant = TinyModels.Variant;
        using var transformer = RandomPipeline.RandomTransformer(variant.TransformerConfig, CPU, ScalarType.Float32);
        using var vae = RandomPipeline.RandomVae(RandomPipeline.VaeConfigFor(variant), CPU, ScalarType.Float32);
        using var pipeline = PixArtPipeline.FromModules(transformer, vae, SchedulerConfig.Empty, new PipelineModulesOptions
        {
            Variant = variant,
            TextEncoder = () => new T5PromptEncoder(T5Tokenizer.FromModel(TinyModels.T5SentencePieceModel()),
                RandomPipeline.RandomTextEncoder(config, CPU, ScalarType.Float32), new T5PromptEncoderOptions { MaxLength = 8 }),
        });
        // Once first, so that what loads only once (code, the tokenizer's tables) is not counted.
        using (pipeline.EncodePrompts(new[] { "a boat" })) { }   // loads T5, encodes, releases it (KeepTextEncoder is off)
        CpuAllocatorTuning.ReturnFreeMemory();
        long before = RssBytes();
        using (pipeline.EncodePrompts(new[] { "a boat" })) { }
        long after = RssBytes();
        long weights = 3L * config.DModel * config.DFf * sizeof(float);
        Assert.True(after - before < weights / 4, $"RSS is {(after - before) >> 20} MB above where it was before T5 ({weights >> 20} MB of weights) was loaded and released");
    }

    static long RssBytes() => MemoryUsage.ResidentBytes()!.Value;

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
