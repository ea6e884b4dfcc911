using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using PixArtLora.IO;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>
/// How long loading a transformer from safetensors takes and how much memory it needs, against simply reading the
/// checkpoint's bytes into memory. The files are read once first so that every figure is taken from the page cache
/// (disk speed is not what is measured).
/// </summary>
public static class LoadBenchmark
{
    /// <summary>
    /// Writes a diffusers transformer folder of <paramref name="variant"/> with random weights for each of
    /// <paramref name="dtypes"/> under <paramref name="folder"/> (<c>transformer-fp32/</c>, <c>transformer-bf16/</c>),
    /// each with <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>. Returns the folders.
    /// </summary>
    public static IReadOnlyList<string> MakeCheckpoints(string folder, ModelVariant variant, IReadOnlyList<ScalarType> dtypes, long seed = 0, Action<string>? log = null)
    {
        torch.manual_seed(seed);
        log?.Invoke($"building {variant.Id} with random weights");
        using var model = new PixArtTransformer2DModel(variant.TransformerConfig, CPU, ScalarType.Float32);
        var state = model.state_dict();
        var written = new List<string>();
        foreach (var dtype in dtypes)
        {
            string target = Path.Combine(folder, $"transformer-{DtypeNames.Short(dtype)}");
            Directory.CreateDirectory(target);
            log?.Invoke($"writing {target}");
            var sources = state.Select(kv => new TensorSource(kv.Key, dtype, kv.Value.shape,
                () => kv.Value.dtype == dtype ? kv.Value : kv.Value.to(dtype))).ToList();
            SafetensorsWriter.Save(Path.Combine(target, "diffusion_pytorch_model.safetensors"), sources,
                new Dictionary<string, string> { ["format"] = "pt" });
            variant.TransformerConfig.Save(Path.Combine(target, "config.json"));
            written.Add(target);
        }
        return written;
    }

    /// <summary>
    /// Measures <paramref name="repeats"/> loads (<see cref="PixArtTransformer2DModel.FromPretrained"/>) of the
    /// transformer at <paramref name="path"/> (a transformer folder, a pipeline folder, or a weights file in one) into a
    /// model of each of <paramref name="dtypes"/>, and as many plain reads of its files.
    /// </summary>
    public static LoadBenchResult Run(string path, IReadOnlyList<ScalarType> dtypes, int repeats = 3, Action<string>? log = null)
    {
        if (repeats < 1) throw new ArgumentException($"repeats {repeats}: expected >= 1");
        var (folder, config) = Resolve(path);
        List<string> files;
        string storedDtype;
        using (var checkpoint = SafetensorsCheckpoint.Open(folder, "diffusion_pytorch_model"))
        {
            files = checkpoint.Files.Select(f => f.Path).ToList();
            storedDtype = string.Join("+", checkpoint.Keys.Select(k => checkpoint.Entry(k).Dtype).Distinct().Order());
        }
        long fileBytes = files.Sum(f => new FileInfo(f).Length);
        var machine = MachineInfo.Read(CPU);

        log?.Invoke($"reading {fileBytes / 1e9:F2} GB once to bring it into the page cache");
        RawRead.Streaming(files);
        var fresh = StepTimer.Measure(() => RawRead.IntoFreshBuffer(files), 0, repeats);
        var streaming = StepTimer.Measure(() => RawRead.Streaming(files), 0, repeats);

        var loads = new List<LoadFigures>();
        foreach (var dtype in dtypes)
        {
            log?.Invoke($"loading into a {DtypeNames.Short(dtype)} model, {repeats}×, then once the naive way");
            var total = new double[repeats];
            long peak = 0, before = 0, weightBytes = 0;
            for (int i = 0; i < repeats; i++)
            {
                var (seconds, rssBefore, rssPeak, bytes) = Measure(() => PixArtTransformer2DModel.FromPretrained(folder, CPU, dtype));
                total[i] = seconds;
                before = Math.Max(before, rssBefore);
                peak = Math.Max(peak, rssPeak);
                weightBytes = bytes;
            }
            // For comparison: what loading cost before FromPretrained skipped the random initialisation.
            var naive = Measure(() =>
            {
                var model = new PixArtTransformer2DModel(config, CPU, dtype);
                model.LoadWeights(folder);
                return model;
            });
            var stats = new TimingStats(total, total);
            loads.Add(new LoadFigures
            {
                Dtype = DtypeNames.Short(dtype),
                SecondsMedian = stats.Median,
                SecondsMin = stats.Min,
                RandomInitThenLoadSeconds = naive.Seconds,
                WeightBytes = weightBytes,
                RssBeforeBytes = before,
                PeakRssBytes = peak,
                OverRawRead = stats.Median / fresh.Median,
                OverStreamingRead = stats.Median / streaming.Median,
                PeakRssOverWeights = (double)peak / weightBytes,
                PeakRssIncreaseOverWeights = (double)(peak - before) / weightBytes,
            });
        }
        return new LoadBenchResult
        {
            Path = Path.GetFullPath(path),
            Files = files,
            FileBytes = fileBytes,
            StoredDtype = storedDtype,
            Repeats = repeats,
            RawReadSecondsMedian = fresh.Median,
            RawReadSecondsMin = fresh.Min,
            StreamingReadSecondsMedian = streaming.Median,
            Loads = loads,
            Device = machine.Device,
            LoadAverage1mStart = machine.LoadAverage1m,
            LoadAverage1mEnd = MachineInfo.LoadAverage(),
            Timestamp = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>One load: seconds, RSS before, peak RSS and weight bytes of the model <paramref name="load"/> returns.</summary>
    static (double Seconds, long RssBefore, long PeakRss, long WeightBytes) Measure(Func<PixArtTransformer2DModel> load)
    {
        ProcessMemory.Settle();
        ProcessMemory.ResetPeak();
        long before = ProcessMemory.ResidentBytes();
        long start = Stopwatch.GetTimestamp();
        using var model = load();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        long peak = ProcessMemory.PeakResidentBytes();
        long bytes = model.parameters().Sum(t => t.numel() * t.element_size());
        return (seconds, before, peak, bytes);
    }

    /// <summary>The transformer folder (with config.json) of a transformer folder, a pipeline folder, or a weights file inside one.</summary>
    static (string Folder, PixArtTransformerConfig Config) Resolve(string path)
    {
        string start = File.Exists(path) ? Path.GetDirectoryName(Path.GetFullPath(path))! : path;
        foreach (var folder in new[] { Path.Combine(start, "transformer"), start })
            if (File.Exists(Path.Combine(folder, "config.json")))
                return (folder, PixArtTransformerConfig.Load(Path.Combine(folder, "config.json")));
        throw new FileNotFoundException($"{path}: not a transformer folder with config.json (or a pipeline folder with transformer/config.json, or a weights file in one)");
    }

    /// <summary>The baselines: the same bytes read with no parsing and no conversion.</summary>
    static class RawRead
    {
        const long Chunk = 1L << 30;   // Span<byte> holds at most 2 GB

        /// <summary>Every file into one fresh buffer of its size (a byte tensor: its pages are touched as loading touches them).</summary>
        public static void IntoFreshBuffer(IReadOnlyList<string> files)
        {
            foreach (var file in files)
            {
                using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
                long length = RandomAccess.GetLength(handle);
                using var buffer = empty(new[] { Math.Max(length, 1) }, ScalarType.Byte, CPU);
                for (long offset = 0; offset < length; offset += Chunk)
                {
                    using var part = buffer.narrow(0, offset, Math.Min(Chunk, length - offset));
                    ReadExactly(handle, part.bytes, offset, file);
                }
            }
        }

        /// <summary>Every file through one reused 16 MB buffer: the page-cache copy alone.</summary>
        public static void Streaming(IReadOnlyList<string> files)
        {
            var buffer = new byte[16 << 20];
            foreach (var file in files)
            {
                using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
                long length = RandomAccess.GetLength(handle);
                for (long offset = 0; offset < length; offset += buffer.Length)
                    ReadExactly(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset)), offset, file);
            }
        }

        static void ReadExactly(SafeFileHandle handle, Span<byte> span, long offset, string file)
        {
            while (span.Length > 0)
            {
                int read = RandomAccess.Read(handle, span, offset);
                if (read <= 0) throw new EndOfStreamException($"{file}: unexpected end of file at byte {offset}");
                span = span[read..];
                offset += read;
            }
        }
    }
}
