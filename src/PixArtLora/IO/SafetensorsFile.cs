using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.IO;

/// <summary>Where one tensor lives inside a safetensors file.</summary>
public sealed record SafetensorsEntry(string Name, string Dtype, ScalarType ScalarType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads one .safetensors file: an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian data.
/// Tensors are read straight into the destination's memory; the header is validated so that a
/// hostile file gives a clear error instead of a crash or a huge allocation.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header we accept; real files have headers of a few hundred KB.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    readonly SafeFileHandle _handle;
    readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafetensorsFile(string path, SafeFileHandle handle, long dataStart, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path; _handle = handle; _dataStart = dataStart; Entries = entries; Metadata = metadata;
    }

    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength < 8) throw Bad(path, $"file is {fileLength} bytes, too short for the 8-byte header length");
            Span<byte> lenBytes = stackalloc byte[8];
            ReadExactly(handle, lenBytes, 0, path);
            ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            if (headerLen > (ulong)MaxHeaderBytes)
                throw Bad(path, $"header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit");
            if (headerLen > (ulong)(fileLength - 8))
                throw Bad(path, $"header length {headerLen} is larger than the file ({fileLength} bytes)");
            var header = new byte[headerLen];
            ReadExactly(handle, header, 8, path);
            long dataStart = 8 + (long)headerLen;
            var (entries, metadata) = ParseHeader(path, header, fileLength - dataStart);
            return new SafetensorsFile(path, handle, dataStart, entries, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Bad(path, $"header is not valid JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "header is not a JSON object");

        var entries = new Dictionary<string, SafetensorsEntry>();
        var metadata = new Dictionary<string, string>();
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad(path, "__metadata__ must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad(path, $"__metadata__.{m.Name} must be a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
        }

        // Offsets must not overlap: a file that aliases two tensors onto one range is malformed.
        var sorted = entries.Values.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw Bad(path, $"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' have overlapping data_offsets");
        return (entries, metadata);
    }

    static SafetensorsEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Bad(path, $"entry '{name}' is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw Bad(path, $"tensor '{name}' has no dtype");
        string dtype = dt.GetString()!;
        if (!SafetensorsDtype.TryParse(dtype, out var scalar, out int elemSize))
            throw Bad(path, $"tensor '{name}' has unknown dtype '{dtype}' (expected one of {string.Join(", ", SafetensorsDtype.Names)})");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"tensor '{name}' has no shape array");
        var shape = new long[sh.GetArrayLength()];
        int k = 0;
        long count = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw Bad(path, $"tensor '{name}' has an invalid shape entry {d}");
            shape[k++] = v;
            count = v == 0 ? 0 : (count > long.MaxValue / v ? throw Bad(path, $"tensor '{name}' shape overflows") : count * v);
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad(path, $"tensor '{name}' has no data_offsets [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad(path, $"tensor '{name}' has invalid data_offsets {off}");
        if (end > dataLength)
            throw Bad(path, $"tensor '{name}' data_offsets [{begin}, {end}] lie outside the data section ({dataLength} bytes)");
        if (count > long.MaxValue / elemSize || count * elemSize != end - begin)
            throw Bad(path, $"tensor '{name}' shape [{string.Join(", ", shape)}] of {dtype} needs {count * (long)elemSize} bytes but data_offsets give {end - begin}");
        return new SafetensorsEntry(name, dtype, scalar, shape, begin, end);
    }

    /// <summary>Reads tensor <paramref name="name"/> as a new CPU tensor of its stored dtype.</summary>
    public Tensor Read(string name)
    {
        var entry = Get(name);
        var t = empty(entry.Shape, entry.ScalarType, CPU);
        ReadRaw(entry, t);
        return t;
    }

    /// <summary>
    /// Copies tensor <paramref name="name"/> into <paramref name="target"/>, converting the dtype and
    /// moving to the target's device. A contiguous CPU target of the stored dtype is filled in place,
    /// with no intermediate copy.
    /// </summary>
    public void ReadInto(string name, Tensor target)
    {
        var entry = Get(name);
        if (!entry.Shape.SequenceEqual(target.shape))
            throw new SafetensorsFormatException(
                $"{name}: shape [{string.Join(", ", entry.Shape)}] in {Path}, expected [{string.Join(", ", target.shape)}]");
        using var noGrad = no_grad();
        if (target.device_type == DeviceType.CPU && target.dtype == entry.ScalarType && target.is_contiguous())
        {
            ReadRaw(entry, target);
            return;
        }
        using var staged = empty(entry.Shape, entry.ScalarType, CPU);
        ReadRaw(entry, staged);
        target.copy_(staged);
    }

    public SafetensorsEntry Get(string name) =>
        Entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"tensor '{name}' not found in {Path}");

    void ReadRaw(SafetensorsEntry entry, Tensor destination)
    {
        if (entry.ByteLength == 0) return;
        // Span<byte> is limited to 2 GB: fill large tensors through 1 GB views of their flat storage.
        const long chunkBytes = 1L << 30;
        int elemSize = SafetensorsDtype.SizeOf(entry.ScalarType);
        long chunkElems = chunkBytes / elemSize;
        using var flat = destination.view(-1);
        long total = entry.ElementCount;
        for (long start = 0; start < total; start += chunkElems)
        {
            long n = Math.Min(chunkElems, total - start);
            using var part = flat.narrow(0, start, n);
            ReadExactly(_handle, part.bytes, _dataStart + entry.Begin + start * elemSize, Path);
        }
    }

    static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset, string path)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n <= 0) throw Bad(path, $"unexpected end of file at byte {offset}");
            buffer = buffer[n..];
            offset += n;
        }
    }

    static SafetensorsFormatException Bad(string path, string what) => new($"{path}: {what}");

    public void Dispose() => _handle.Dispose();
}
