using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.IO;

/// <summary>A tensor to be written: its name, dtype and shape up front, its data produced on demand
/// so that large checkpoints can be written one tensor at a time.</summary>
public sealed record TensorSource(string Name, ScalarType Dtype, long[] Shape, Func<Tensor> Produce)
{
    public long ByteLength => Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsDtype.SizeOf(Dtype);

    public static TensorSource Of(string name, Tensor t) => new(name, t.dtype, t.shape, () => t);
}

/// <summary>Writes safetensors files atomically, optionally sharded with a Hugging Face index file.</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (in name order) to one file.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, tensors.Select(kv => TensorSource.Of(kv.Key, kv.Value)).ToList(), metadata);

    public static void Save(string path, IReadOnlyList<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var dupes = ordered.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (dupes != null) throw new ArgumentException($"tensor name '{dupes.Key}' appears twice in {path}");
        byte[] header = BuildHeader(ordered, metadata);
        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            fs.Write(len);
            fs.Write(header);
            foreach (var src in ordered)
            {
                using var scope = NewDisposeScope();
                var t = src.Produce();
                if (!t.shape.SequenceEqual(src.Shape) || t.dtype != src.Dtype)
                    throw new InvalidOperationException($"{src.Name}: produced [{string.Join(", ", t.shape)}] {t.dtype}, declared [{string.Join(", ", src.Shape)}] {src.Dtype}");
                var cpu = t.device_type == DeviceType.CPU ? t : t.cpu();
                cpu = cpu.is_contiguous() ? cpu : cpu.contiguous();
                WriteTensorBytes(fs, cpu);
            }
        });
    }

    /// <summary>
    /// Writes a checkpoint in the Hugging Face layout: one <c>{baseName}.safetensors</c>, or when the
    /// tensors exceed <paramref name="maxShardBytes"/>, shards <c>{baseName}-0000i-of-0000n.safetensors</c>
    /// plus <c>{baseName}.safetensors.index.json</c>. Each file is written atomically.
    /// </summary>
    public static IReadOnlyList<string> SaveSharded(string folder, string baseName, IReadOnlyList<TensorSource> tensors,
        long maxShardBytes = 10L << 30, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(folder);
        var shards = new List<List<TensorSource>> { new() };
        long current = 0;
        foreach (var t in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            if (current > 0 && current + t.ByteLength > maxShardBytes) { shards.Add(new()); current = 0; }
            shards[^1].Add(t);
            current += t.ByteLength;
        }
        if (shards.Count == 1)
        {
            string single = Path.Combine(folder, baseName + ".safetensors");
            Save(single, shards[0], metadata);
            return new[] { single };
        }
        var written = new List<string>();
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"{baseName}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Save(Path.Combine(folder, file), shards[i], metadata);
            written.Add(Path.Combine(folder, file));
            foreach (var t in shards[i]) weightMap[t.Name] = file;
        }
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = tensors.Sum(t => t.ByteLength) },
            ["weight_map"] = weightMap,
        };
        string indexPath = Path.Combine(folder, baseName + ".safetensors.index.json");
        AtomicFile.WriteAllText(indexPath, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        written.Add(indexPath);
        return written;
    }

    static byte[] BuildHeader(IReadOnlyList<TensorSource> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var root = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata) m[k] = v;
            root["__metadata__"] = m;
        }
        long offset = 0;
        foreach (var t in ordered)
        {
            var shape = new JsonArray();
            foreach (var d in t.Shape) shape.Add(d);
            root[t.Name] = new JsonObject
            {
                ["dtype"] = SafetensorsDtype.NameOf(t.Dtype),
                ["shape"] = shape,
                ["data_offsets"] = new JsonArray(offset, offset + t.ByteLength),
            };
            offset += t.ByteLength;
        }
        var json = Encoding.UTF8.GetBytes(root.ToJsonString());
        // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
        int padded = (json.Length + 8 + 7) / 8 * 8 - 8;
        var header = new byte[padded];
        json.CopyTo(header, 0);
        for (int i = json.Length; i < padded; i++) header[i] = (byte)' ';
        return header;
    }

    static void WriteTensorBytes(Stream stream, Tensor cpuContiguous)
    {
        const long chunkElems = 1L << 26;
        long total = cpuContiguous.numel();
        if (total == 0) return;
        using var flat = cpuContiguous.view(-1);
        for (long start = 0; start < total; start += chunkElems)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElems, total - start));
            stream.Write(part.bytes);
        }
    }
}
