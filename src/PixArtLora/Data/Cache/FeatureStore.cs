using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Data.Cache;

/// <summary>
/// A folder of precomputed features (text embeddings, VAE latents) keyed by a content hash. Entries are
/// appended in safetensors shards; <c>index.json</c> maps each key to its shard and tensor names. A key
/// covers everything that determines the features (model, settings, input content), so changing any of
/// them simply misses the cache for the affected items; <see cref="Prune"/> drops what is no longer used.
/// Single writer at a time; readers see the index as of <see cref="Open"/> or the last <see cref="Flush"/>.
/// </summary>
public sealed class FeatureStore : IDisposable
{
    const string IndexFile = "index.json";
    const int FormatVersion = 1;

    readonly string _folder;
    readonly Dictionary<string, IndexEntry> _index;
    readonly Dictionary<string, SafetensorsFile> _openShards = new();
    readonly Dictionary<string, Dictionary<string, Tensor>> _pending = new();
    long _pendingBytes;

    /// <summary>Pending entries are written as a shard once they reach this many bytes.</summary>
    public long ShardBytes { get; init; } = 512L << 20;

    public string Folder => _folder;
    public int Count => _index.Count + _pending.Keys.Count(k => !_index.ContainsKey(k));

    FeatureStore(string folder, Dictionary<string, IndexEntry> index) { _folder = folder; _index = index; }

    /// <summary>Opens (or creates) the store in <paramref name="folder"/>.</summary>
    public static FeatureStore Open(string folder)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, IndexFile);
        if (!File.Exists(path)) return new FeatureStore(folder, new());
        IndexDocument? doc;
        try { doc = JsonSerializer.Deserialize<IndexDocument>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: feature cache index is not valid JSON ({e.Message}); delete the folder to rebuild it"); }
        if (doc == null || doc.Version != FormatVersion)
            throw new InvalidDataException($"{path}: feature cache format version {doc?.Version}, expected {FormatVersion}; delete the folder to rebuild it");
        return new FeatureStore(folder, doc.Entries);
    }

    /// <summary>A stable key from the parts that determine a feature (hex SHA-256 of the parts, length-prefixed).</summary>
    public static string Key(params string[] parts)
    {
        var sb = new StringBuilder();
        foreach (var p in parts) sb.Append(p.Length).Append(':').Append(p).Append('|');
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString()))).ToLowerInvariant();
    }

    /// <summary>SHA-256 of a file's bytes, for keys that must change when the file's content changes.</summary>
    public static string HashFile(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(fs)).ToLowerInvariant();
    }

    public bool Contains(string key) => _pending.ContainsKey(key) || _index.ContainsKey(key);

    /// <summary>The tensors stored under <paramref name="key"/> as new CPU tensors, or false if absent.</summary>
    public bool TryGet(string key, out Dictionary<string, Tensor> tensors)
    {
        if (_pending.TryGetValue(key, out var p))
        {
            tensors = p.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            return true;
        }
        if (!_index.TryGetValue(key, out var entry)) { tensors = new(); return false; }
        var shard = Shard(entry.Shard);
        tensors = entry.Names.ToDictionary(n => n, n => shard.Read($"{key}/{n}"));
        return true;
    }

    /// <summary>Stores <paramref name="tensors"/> under <paramref name="key"/> (copied to CPU); written at the next flush.</summary>
    public void Put(string key, IReadOnlyDictionary<string, Tensor> tensors)
    {
        foreach (var name in tensors.Keys)
            if (name.Contains('/')) throw new ArgumentException($"feature name '{name}' may not contain '/'");
        var copy = tensors.ToDictionary(kv => kv.Key, kv =>
        {
            // The store owns pending copies until Flush: no caller's dispose scope may free them.
            var t = kv.Value.detach().cpu().contiguous().clone();
            t.DetachFromDisposeScope();
            return t;
        });
        if (_pending.Remove(key, out var old)) foreach (var t in old.Values) t.Dispose();
        _pending[key] = copy;
        _pendingBytes += copy.Values.Sum(t => t.numel() * t.ElementSize);
        if (_pendingBytes >= ShardBytes) Flush();
    }

    /// <summary>Writes pending entries to a new shard, then the index (each atomically).</summary>
    public void Flush()
    {
        if (_pending.Count == 0) return;
        string shardName = $"shard-{DateTime.UtcNow:yyyyMMddHHmmssfff}-{Guid.NewGuid().ToString("N")[..8]}.safetensors";
        var sources = new List<TensorSource>();
        foreach (var (key, tensors) in _pending)
            foreach (var (name, t) in tensors)
                sources.Add(TensorSource.Of($"{key}/{name}", t));
        SafetensorsWriter.Save(Path.Combine(_folder, shardName), sources);
        foreach (var (key, tensors) in _pending)
        {
            _index[key] = new IndexEntry { Shard = shardName, Names = tensors.Keys.ToList() };
            foreach (var t in tensors.Values) t.Dispose();
        }
        _pending.Clear();
        _pendingBytes = 0;
        WriteIndex();
    }

    /// <summary>Drops every entry whose key is not in <paramref name="keep"/> and deletes shards no entry uses. Returns the number dropped.</summary>
    public int Prune(IReadOnlySet<string> keep)
    {
        Flush();
        var drop = _index.Keys.Where(k => !keep.Contains(k)).ToList();
        foreach (var k in drop) _index.Remove(k);
        WriteIndex();
        var used = _index.Values.Select(e => e.Shard).ToHashSet();
        foreach (var file in Directory.GetFiles(_folder, "shard-*.safetensors"))
        {
            string name = Path.GetFileName(file);
            if (used.Contains(name)) continue;
            if (_openShards.Remove(name, out var f)) f.Dispose();
            File.Delete(file);
        }
        return drop.Count;
    }

    SafetensorsFile Shard(string name)
    {
        if (!_openShards.TryGetValue(name, out var f))
        {
            string path = Path.Combine(_folder, name);
            if (!File.Exists(path)) throw new InvalidDataException($"{Path.Combine(_folder, IndexFile)} names shard '{name}', which is missing; delete the cache folder to rebuild it");
            f = SafetensorsFile.Open(path);
            _openShards[name] = f;
        }
        return f;
    }

    void WriteIndex()
    {
        var doc = new IndexDocument { Version = FormatVersion, Entries = _index };
        AtomicFile.WriteAllText(Path.Combine(_folder, IndexFile), JsonSerializer.Serialize(doc));
    }

    public void Dispose()
    {
        Flush();
        foreach (var f in _openShards.Values) f.Dispose();
        _openShards.Clear();
    }

    sealed class IndexDocument
    {
        [JsonPropertyName("version")] public int Version { get; set; }
        [JsonPropertyName("entries")] public Dictionary<string, IndexEntry> Entries { get; set; } = new();
    }

    sealed class IndexEntry
    {
        [JsonPropertyName("shard")] public string Shard { get; set; } = "";
        [JsonPropertyName("names")] public List<string> Names { get; set; } = new();
    }
}
