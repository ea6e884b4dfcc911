using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.IO;

/// <summary>
/// Reads a PyTorch checkpoint written by <c>torch.save</c> (the zip format, torch 1.6 and later) without
/// Python: the pickle in <c>data.pkl</c> is rebuilt by a restricted unpickler that accepts only tensors,
/// storages, dicts, lists and numbers, and tensor data is read from <c>data/{key}</c> on demand.
/// A .pth file is a pickle, which Python would execute; prefer safetensors wherever there is a choice.
/// </summary>
public sealed class PthFile : IDisposable
{
    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly Dictionary<string, PthTensorInfo> _tensors;

    /// <summary>The file this was opened from.</summary>
    public string Path { get; }

    /// <summary>Keys of the top-level dict (e.g. <c>state_dict</c>, <c>optimizer</c>, <c>epoch</c>); empty when the top level is not a dict.</summary>
    public IReadOnlyList<string> TopLevelKeys { get; }

    /// <summary>Which top-level key the tensors come from, or null when the file is itself a state dict.</summary>
    public string? StateDictKey { get; }

    /// <summary>The state dict's tensors by name, in file order.</summary>
    public IReadOnlyDictionary<string, PthTensorInfo> Tensors => _tensors;

    /// <summary>Tensor names in the order the file lists them.</summary>
    public IReadOnlyList<string> Names { get; }

    PthFile(string path, ZipArchive zip, string prefix, string? key, List<string> topKeys, List<KeyValuePair<string, PthTensorInfo>> tensors)
    {
        Path = path;
        _zip = zip;
        _prefix = prefix;
        StateDictKey = key;
        TopLevelKeys = topKeys;
        _tensors = tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        Names = tensors.Select(kv => kv.Key).ToList();
    }

    /// <summary>
    /// Opens a checkpoint and selects its state dict: <paramref name="stateDictKey"/> when given, else
    /// the top-level <c>state_dict</c> entry when present (PixArt's releases and training checkpoints),
    /// else the top-level dict itself (a bare <c>torch.save(model.state_dict())</c>).
    /// </summary>
    public static PthFile Open(string path, string? stateDictKey = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        CheckContainer(path);
        var zip = ZipFile.OpenRead(path);
        try
        {
            var pkl = zip.Entries.Where(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                .OrderBy(e => e.FullName.Count(c => c == '/')).FirstOrDefault()
                ?? throw new PthFormatException($"{path}: zip archive without a data.pkl entry; not a torch.save checkpoint");
            string prefix = pkl.FullName[..^"data.pkl".Length];
            var byteOrder = zip.GetEntry(prefix + "byteorder");
            if (byteOrder != null)
            {
                using var r = new StreamReader(byteOrder.Open());
                string order = r.ReadToEnd().Trim();
                if (order != "little") throw new PthFormatException($"{path}: byteorder '{order}' is not supported (only little-endian)");
            }

            var storages = new Dictionary<string, PthStorage>(StringComparer.Ordinal);
            byte[] pickle = ReadAll(pkl);
            object? root = new PthUnpickler(pickle, $"{path}:{pkl.FullName}", pid => LoadStorage(path, pid, storages)).Load();

            var (key, dict, topKeys) = SelectStateDict(path, root, stateDictKey);
            var tensors = new List<KeyValuePair<string, PthTensorInfo>>();
            foreach (var k in dict.Keys)
            {
                if (k is not string name) throw new PthFormatException($"{path}: state dict key {PthUnpickler.Describe(k)} is not a string");
                if (dict[k] is not PthTensorInfo t)
                    throw new PthFormatException($"{path}: state dict entry '{name}' is a {PthUnpickler.Describe(dict[k])}, expected a tensor");
                tensors.Add(new(name, t));
            }
            return new PthFile(path, zip, prefix, key, topKeys, tensors);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>Reads tensor <paramref name="name"/> into a new contiguous CPU tensor of its stored dtype.</summary>
    public Tensor Read(string name)
    {
        var info = _tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"tensor '{name}' not found in {Path}");
        var storage = info.Storage;
        long maxIndex = info.StorageOffset + info.Shape.Zip(info.Stride, (s, st) => s == 0 ? 0 : (s - 1) * st).Sum();
        if (info.ElementCount > 0 && (info.StorageOffset < 0 || maxIndex >= storage.ElementCount))
            throw new PthFormatException($"{Path}: tensor '{name}' reaches element {maxIndex} of storage '{storage.Key}', which holds {storage.ElementCount}");

        using var scope = NewDisposeScope();
        var flat = empty(storage.ElementCount, storage.Dtype, CPU);
        FillStorage(storage, flat);
        Tensor result = IsContiguousWhole(info) ? flat.view(info.Shape) : flat.as_strided(info.Shape, info.Stride, info.StorageOffset).contiguous();
        return result.MoveToOuterDisposeScope();
    }

    static bool IsContiguousWhole(PthTensorInfo info)
    {
        if (info.StorageOffset != 0 || info.ElementCount != info.Storage.ElementCount) return false;
        long expected = 1;
        for (int i = info.Shape.Length - 1; i >= 0; i--)
        {
            if (info.Shape[i] != 1 && info.Stride[i] != expected) return false;
            expected *= info.Shape[i];
        }
        return true;
    }

    void FillStorage(PthStorage storage, Tensor flat)
    {
        string entryName = _prefix + "data/" + storage.Key;
        var entry = _zip.GetEntry(entryName) ?? throw new PthFormatException($"{Path}: storage '{storage.Key}' has no entry {entryName}");
        long needed = storage.ElementCount * PthStorageTypes.SizeOf(storage.Dtype);
        if (entry.Length < needed)
            throw new PthFormatException($"{Path}: entry {entryName} holds {entry.Length} bytes, storage '{storage.Key}' needs {needed}");
        if (needed == 0) return;
        using var stream = entry.Open();
        // Span<byte> is limited to 2 GB: fill through 1 GB views.
        int elemSize = PthStorageTypes.SizeOf(storage.Dtype);
        long chunkElems = (1L << 30) / elemSize;
        for (long start = 0; start < storage.ElementCount; start += chunkElems)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElems, storage.ElementCount - start));
            try { stream.ReadExactly(part.bytes); }
            catch (EndOfStreamException) { throw new PthFormatException($"{Path}: entry {entryName} ends early"); }
        }
    }

    static PthStorage LoadStorage(string path, object?[] pid, Dictionary<string, PthStorage> storages)
    {
        // torch.save: ('storage', storage_type, key, location, numel)
        if (pid.Length != 5 || pid[0] is not "storage")
            throw new PthFormatException($"{path}: persistent id of {pid.Length} items, expected ('storage', type, key, location, numel)");
        if (pid[1] is not PickleGlobal { Module: "torch" } type || !PthStorageTypes.IsStorageType(type.Name))
            throw new PthFormatException($"{path}: storage type {PthUnpickler.Describe(pid[1])} is not supported");
        if (pid[2] is not string key || pid[4] is not long numel || numel < 0)
            throw new PthFormatException($"{path}: malformed storage id (key {PthUnpickler.Describe(pid[2])}, numel {PthUnpickler.Describe(pid[4])})");
        if (key.Contains('/') || key.Contains('\\') || key.Contains(".."))
            throw new PthFormatException($"{path}: storage key '{key}' is not a plain name");
        var (dtype, _) = PthStorageTypes.Get(type.Name);
        if (storages.TryGetValue(key, out var existing))
        {
            if (existing.Dtype != dtype) throw new PthFormatException($"{path}: storage '{key}' used as both {existing.Dtype} and {dtype}");
            return existing;
        }
        var s = new PthStorage(key, dtype, numel, pid[3] as string ?? "cpu");
        storages[key] = s;
        return s;
    }

    static (string? Key, PickleDict Dict, List<string> TopKeys) SelectStateDict(string path, object? root, string? requested)
    {
        if (root is not PickleDict top)
            throw new PthFormatException($"{path}: the checkpoint holds a {PthUnpickler.Describe(root)}, expected a dict of tensors");
        var topKeys = top.Keys.OfType<string>().ToList();
        string? key = requested ?? (top.TryGet("state_dict", out var sd) && sd is PickleDict ? "state_dict" : null);
        if (key == null) return (null, top, topKeys);
        if (!top.TryGet(key, out var chosen))
            throw new PthFormatException($"{path}: no top-level key '{key}' (keys: {string.Join(", ", topKeys)})");
        if (chosen is not PickleDict dict)
            throw new PthFormatException($"{path}: '{key}' is a {PthUnpickler.Describe(chosen)}, expected a dict of tensors");
        return (key, dict, topKeys);
    }

    static void CheckContainer(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using (var fs = File.OpenRead(path))
        {
            if (fs.Length < 4 || fs.Read(magic) < 4) throw new PthFormatException($"{path}: too short to be a checkpoint");
        }
        if (magic[0] == (byte)'P' && magic[1] == (byte)'K') return;
        if (magic[0] == 0x80)
            throw new PthFormatException($"{path}: legacy torch.save format (torch < 1.6 or _use_new_zipfile_serialization=False) is not supported; " +
                                         "re-save it with a current torch, or convert it to safetensors");
        throw new PthFormatException($"{path}: not a torch.save zip archive (first bytes {Convert.ToHexString(magic)})");
    }

    static byte[] ReadAll(ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    public void Dispose() => _zip.Dispose();
}
