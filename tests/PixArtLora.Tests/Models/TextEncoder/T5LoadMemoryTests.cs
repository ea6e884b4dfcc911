using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Models.TextEncoder;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.TextEncoder;

[CollectionDefinition("process memory", DisableParallelization = true)]
public class ProcessMemoryCollection { }

/// <summary>
/// Peak resident memory while loading a synthetic mid-size T5 checkpoint (sharded, as published), measured with
/// the kernel's high-water mark after resetting it. Runs alone so other tests do not disturb the measurement.
/// PIXART_T5_RSS_SCALE=N multiplies the model width (default 1: ~24 M parameters; 8: ~400 M).
/// </summary>
[Collection("process memory")]
public class T5LoadMemoryTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16)]
    [InlineData(ScalarType.Float32, ScalarType.BFloat16)]
    public void PeakRssWhileLoadingIsAboutTheWeights(ScalarType fileDtype, ScalarType modelDtype)
    {
        int scale = int.TryParse(Environment.GetEnvironmentVariable("PIXART_T5_RSS_SCALE"), out int s) ? s : 1;
        var config = TinyT5.Config(dModel: 384 * scale, dKv: 64, heads: 6 * scale, dFf: 1024 * scale, layers: 8);
        // tmpfs when there is one: the files are written and read once, and a disk's fsync would dominate the test.
        string dir = Directory.Exists("/dev/shm") ? Path.Combine("/dev/shm", $"pixartlora-t5-rss-{Guid.NewGuid():N}") : TestPaths.NewTempDir("t5-rss");
        Directory.CreateDirectory(dir);
        try
        {
            WriteSharded(dir, config, fileDtype);
            long weightBytes = T5EncoderModel.Create(T5Config.Load(dir), META, modelDtype).state_dict().Values.Sum(t => t.numel()) * ElementSize(modelDtype);
            long largestStaged = fileDtype == modelDtype ? 0 : TinyT5.VocabSize * 384L * scale * ElementSize(fileDtype);

            Skip.IfNot(ResetPeak(), "cannot reset VmHWM (/proc/self/clear_refs) here");
            GC.Collect();
            // Hand memory freed by earlier work back to the kernel, or the load would reuse pages already
            // counted in the baseline and look smaller than it is.
            malloc_trim(0);
            long before = Status("VmRSS");
            ResetPeak();
            var model = T5EncoderModel.Load(dir, CPU, modelDtype);
            long peak = Status("VmHWM") - before;
            long resident = Status("VmRSS") - before;
            model.Dispose();
            malloc_trim(0);
            // Informational: whether freed pages go back to the kernel is the allocator's choice.
            long afterRelease = Status("VmRSS") - before;

            output.WriteLine($"{fileDtype} file -> {modelDtype} model: weights {Mb(weightBytes)}, peak RSS +{Mb(peak)} " +
                             $"({(double)peak / weightBytes:F3}x), resident after load +{Mb(resident)}, after release +{Mb(afterRelease)}");
            Assert.True(peak <= weightBytes * 1.1 + largestStaged + (12L << 20),
                $"peak RSS grew by {Mb(peak)} to load {Mb(weightBytes)} of weights (staging allowance {Mb(largestStaged)})");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static void WriteSharded(string dir, JsonObject config, ScalarType dtype)
    {
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        using var meta = T5EncoderModel.Create(T5Config.Load(dir), META, dtype);
        var sources = meta.state_dict().Select(kv => new TensorSource(kv.Key, dtype, kv.Value.shape,
            () => (randn(kv.Value.shape) * 0.1).to(dtype))).ToList();
        long total = sources.Sum(t => t.ByteLength);
        SafetensorsWriter.SaveSharded(dir, "model", sources, maxShardBytes: total / 3 + 1);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int malloc_trim(nuint pad);

    static long ElementSize(ScalarType t) => t is ScalarType.BFloat16 or ScalarType.Float16 ? 2 : 4;

    static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    static long Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":"))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        throw new InvalidOperationException($"{field} not in /proc/self/status");
    }

    static string Mb(long bytes) => $"{bytes / 1048576.0:F1} MB";
}
