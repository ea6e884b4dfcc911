using System.Text.Json;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Conversion;

/// <summary>Options for <see cref="PixArtCheckpointConverter"/>.</summary>
/// <param name="Dtype">store tensors in this dtype; null keeps each tensor's own</param>
/// <param name="StateDictKey">the .pth top-level key holding the weights (default <c>state_dict</c> when present; e.g. <c>state_dict_ema</c>)</param>
/// <param name="MaxShardBytes">diffusers' default shard size is 10 GB, so PixArt transformers stay one file</param>
public sealed record ConversionOptions(ScalarType? Dtype = null, string? StateDictKey = null, long MaxShardBytes = 10L << 30);

/// <summary>What a conversion wrote and what it left out.</summary>
/// <param name="Output">the folder (to diffusers) or file (to original) written</param>
/// <param name="Files">every file written</param>
/// <param name="TensorCount">tensors written</param>
/// <param name="ParameterCount">their total element count</param>
/// <param name="Dropped">input keys with no counterpart in the output, and why</param>
/// <param name="StateDictKey">for a .pth input, the top-level key the weights came from</param>
public sealed record ConversionReport(string Output, IReadOnlyList<string> Files, int TensorCount, long ParameterCount,
    IReadOnlyDictionary<string, string> Dropped, string? StateDictKey);

/// <summary>
/// Converts original PixArt checkpoints (the released <c>PixArt-*.pth</c> and training checkpoints) to the
/// diffusers transformer layout and back. The key mapping is <see cref="PixArtKeyMap"/>; values are copied
/// or split exactly, never recomputed. Outputs are written atomically.
/// </summary>
public static class PixArtCheckpointConverter
{
    /// <summary>
    /// Writes <paramref name="outputFolder"/> as a diffusers <c>transformer/</c> folder: <c>config.json</c>
    /// (<paramref name="transformerConfig"/>, checked against the checkpoint's shapes) and
    /// <c>diffusion_pytorch_model.safetensors</c> (sharded with an index past <see cref="ConversionOptions.MaxShardBytes"/>).
    /// </summary>
    public static ConversionReport ToDiffusers(string source, string outputFolder, JsonObject transformerConfig, ConversionOptions? options = null)
    {
        options ??= new ConversionOptions();
        using var reader = StateDictReader.Open(source, options.StateDictKey);
        var plan = PixArtKeyMap.ToDiffusers(reader.Names, source);
        var sources = BuildSources(reader, plan, options.Dtype);
        var shapes = sources.ToDictionary(s => s.Name, s => s.Shape);
        var config = TransformerConfigCheck.Validate(transformerConfig, shapes, source);

        var written = new List<string>();
        AtomicFile.WriteDirectory(outputFolder, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            var files = SafetensorsWriter.SaveSharded(tmp, "diffusion_pytorch_model", sources, options.MaxShardBytes);
            written.Add(Path.Combine(outputFolder, "config.json"));
            written.AddRange(files.Select(f => Path.Combine(outputFolder, Path.GetFileName(f))));
        });
        return Report(outputFolder, written, sources, plan.Dropped, reader.StateDictKey);
    }

    /// <summary>
    /// Writes the original PixArt key names to one safetensors file (q/k/v fused back into <c>attn.qkv</c>,
    /// k/v into <c>cross_attn.kv_linear</c>), for tools that expect them. <c>pos_embed</c> and
    /// <c>y_embedder.y_embedding</c> do not exist in diffusers checkpoints and are not written.
    /// </summary>
    public static ConversionReport ToOriginal(string source, string outputFile, ConversionOptions? options = null)
    {
        options ??= new ConversionOptions();
        using var reader = StateDictReader.Open(source, options.StateDictKey, preferredSafetensorsName: "diffusion_pytorch_model");
        var plan = PixArtKeyMap.ToOriginal(reader.Names, source);
        var sources = BuildSources(reader, plan, options.Dtype);
        SafetensorsWriter.Save(outputFile, sources, new Dictionary<string, string> { ["format"] = "pt" });
        return Report(outputFile, new[] { outputFile }, sources, plan.Dropped, reader.StateDictKey);
    }

    /// <summary>Converts in memory: original names → diffusers names (for callers that load straight into a model).</summary>
    public static Dictionary<string, Tensor> ToDiffusersTensors(string source, ConversionOptions? options = null)
    {
        options ??= new ConversionOptions();
        using var reader = StateDictReader.Open(source, options.StateDictKey);
        var plan = PixArtKeyMap.ToDiffusers(reader.Names, source);
        var result = new Dictionary<string, Tensor>();
        foreach (var s in BuildSources(reader, plan, options.Dtype))
        {
            using var scope = NewDisposeScope();
            result[s.Name] = s.Produce().MoveToOuterDisposeScope();
        }
        return result;
    }

    static List<TensorSource> BuildSources(StateDictReader reader, KeyMapPlan plan, ScalarType? dtype)
    {
        var cache = new SharedReads(reader, plan.Mappings);
        var list = new List<TensorSource>();
        foreach (var m in plan.Mappings)
        {
            var first = reader.Shape(m.Sources[0]);
            var srcDtype = reader.Dtype(m.Sources[0]);
            foreach (var s in m.Sources.Skip(1))
            {
                var shape = reader.Shape(s);
                if (reader.Dtype(s) != srcDtype || !shape.Skip(1).SequenceEqual(first.Skip(1)))
                    throw new ConversionException($"{reader.Source}: '{s}' is [{string.Join(", ", shape)}] {reader.Dtype(s)}, " +
                                                  $"cannot be stacked with '{m.Sources[0]}' [{string.Join(", ", first)}] {srcDtype} into '{m.Target}'");
            }
            long[] outShape = (long[])first.Clone();
            if (m.IsSplit)
            {
                if (first.Length == 0 || first[0] % m.ChunkCount != 0)
                    throw new ConversionException($"{reader.Source}: '{m.Sources[0]}' has shape [{string.Join(", ", first)}]; " +
                                                  $"its first dimension must split into {m.ChunkCount} equal parts for '{m.Target}'");
                outShape[0] = first[0] / m.ChunkCount;
            }
            else if (m.IsConcat)
                outShape[0] = m.Sources.Sum(s => reader.Shape(s)[0]);

            var mapping = m;
            var outDtype = dtype ?? srcDtype;
            list.Add(new TensorSource(m.Target, outDtype, outShape, () => Produce(cache, mapping, outShape, outDtype)));
        }
        return list;
    }

    static Tensor Produce(SharedReads cache, KeyMapping m, long[] shape, ScalarType dtype)
    {
        Tensor t;
        if (m.IsConcat)
            t = cat(m.Sources.Select(cache.Take).ToArray(), 0);
        else
        {
            var src = cache.Take(m.Sources[0]);
            t = m.IsSplit ? src.narrow(0, shape[0] * m.ChunkIndex, shape[0]).contiguous() : src;
        }
        return t.dtype == dtype ? t : t.to(dtype);
    }

    static ConversionReport Report(string output, IReadOnlyList<string> files, List<TensorSource> sources, IReadOnlyDictionary<string, string> dropped, string? key) =>
        new(output, files, sources.Count, sources.Sum(s => s.Shape.Aggregate(1L, (a, b) => a * b)), dropped, key);

    /// <summary>
    /// A fused tensor (attn.qkv) feeds several outputs that the writer asks for at different times; keep it
    /// after the first read until its last consumer has taken it, instead of reading it once per chunk.
    /// </summary>
    sealed class SharedReads
    {
        readonly StateDictReader _reader;
        readonly Dictionary<string, int> _remaining = new();
        readonly Dictionary<string, Tensor> _held = new();

        public SharedReads(StateDictReader reader, IEnumerable<KeyMapping> mappings)
        {
            _reader = reader;
            foreach (var s in mappings.SelectMany(m => m.Sources))
                _remaining[s] = _remaining.GetValueOrDefault(s) + 1;
        }

        /// <summary>The source tensor (a view owned by the caller's dispose scope); the shared copy is freed after its last use.</summary>
        public Tensor Take(string name)
        {
            if (!_held.TryGetValue(name, out var t))
            {
                if (_remaining[name] == 1) { _remaining[name] = 0; return _reader.Read(name); }
                t = _reader.Read(name).DetachFromDisposeScope();
                _held[name] = t;
            }
            var view = t.alias();
            if (--_remaining[name] == 0)
            {
                _held.Remove(name);
                t.Dispose();
            }
            return view;
        }
    }
}
