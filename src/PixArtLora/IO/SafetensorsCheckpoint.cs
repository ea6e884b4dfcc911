using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.IO;

/// <summary>
/// A set of tensors stored in one safetensors file or in a folder of shards described by a
/// Hugging Face <c>*.safetensors.index.json</c> (its <c>weight_map</c> names the shard of each key).
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    readonly Dictionary<string, SafetensorsFile> _byKey = new();
    readonly List<SafetensorsFile> _files = new();

    /// <summary>The file or folder this checkpoint was opened from.</summary>
    public string Source { get; }
    public IReadOnlyCollection<string> Keys => _byKey.Keys;
    public IReadOnlyList<SafetensorsFile> Files => _files;

    SafetensorsCheckpoint(string source) { Source = source; }

    /// <summary>
    /// Opens a .safetensors file, an index .json, or a folder. In a folder, an index whose name starts with
    /// <paramref name="preferredBaseName"/> wins, then a single <c>{preferredBaseName}.safetensors</c>, then the
    /// only index or the only .safetensors file present.
    /// </summary>
    public static SafetensorsCheckpoint Open(string path, string? preferredBaseName = null)
    {
        if (File.Exists(path))
            return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenFiles(path, new[] { path });
        if (!Directory.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);

        var indexes = Directory.GetFiles(path, "*.safetensors.index.json");
        var files = Directory.GetFiles(path, "*.safetensors");
        if (preferredBaseName != null)
        {
            var idx = Path.Combine(path, preferredBaseName + ".safetensors.index.json");
            if (File.Exists(idx)) return OpenIndex(idx);
            var single = Path.Combine(path, preferredBaseName + ".safetensors");
            if (File.Exists(single)) return OpenFiles(path, new[] { single });
        }
        if (indexes.Length == 1) return OpenIndex(indexes[0]);
        if (indexes.Length == 0 && files.Length == 1) return OpenFiles(path, files);
        if (indexes.Length == 0 && files.Length == 0)
            throw new SafetensorsFormatException($"{path}: no .safetensors file in this folder");
        throw new SafetensorsFormatException(
            $"{path}: several checkpoints in this folder ({string.Join(", ", indexes.Concat(files).Select(Path.GetFileName))}); name the file");
    }

    static SafetensorsCheckpoint OpenIndex(string indexPath)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException($"{indexPath}: no \"weight_map\" object");
            weightMap = wm.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()
                ?? throw new SafetensorsFormatException($"{indexPath}: weight_map.{p.Name} is not a file name"));
        }
        catch (JsonException e) { throw new SafetensorsFormatException($"{indexPath}: not valid JSON ({e.Message})"); }

        var ckpt = new SafetensorsCheckpoint(indexPath);
        try
        {
            var opened = new Dictionary<string, SafetensorsFile>();
            foreach (var (key, shard) in weightMap)
            {
                if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                    throw new SafetensorsFormatException($"{indexPath}: weight_map.{key} names '{shard}', which is not a file beside the index");
                if (!opened.TryGetValue(shard, out var f))
                {
                    string shardPath = Path.Combine(folder, shard);
                    if (!File.Exists(shardPath))
                        throw new SafetensorsFormatException($"{indexPath}: shard '{shard}' (holding '{key}') does not exist in {folder}");
                    f = SafetensorsFile.Open(shardPath);
                    opened[shard] = f;
                    ckpt._files.Add(f);
                }
                if (!f.Entries.ContainsKey(key))
                    throw new SafetensorsFormatException($"{indexPath}: weight_map puts '{key}' in '{shard}', but that file has no such tensor");
                ckpt._byKey[key] = f;
            }
            return ckpt;
        }
        catch { ckpt.Dispose(); throw; }
    }

    static SafetensorsCheckpoint OpenFiles(string source, IEnumerable<string> paths)
    {
        var ckpt = new SafetensorsCheckpoint(source);
        try
        {
            foreach (var p in paths)
            {
                var f = SafetensorsFile.Open(p);
                ckpt._files.Add(f);
                foreach (var k in f.Entries.Keys) ckpt._byKey[k] = f;
            }
            return ckpt;
        }
        catch { ckpt.Dispose(); throw; }
    }

    public bool Contains(string key) => _byKey.ContainsKey(key);

    public SafetensorsEntry Entry(string key) => FileOf(key).Get(key);

    public SafetensorsFile FileOf(string key) =>
        _byKey.TryGetValue(key, out var f) ? f : throw new KeyNotFoundException($"'{key}' not found in {Source}");

    public Tensor Read(string key) => FileOf(key).Read(key);

    public void ReadInto(string key, Tensor target) => FileOf(key).ReadInto(key, target);

    /// <summary>Metadata of the first file (shards written together carry the same metadata).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _files.Count > 0 ? _files[0].Metadata : new Dictionary<string, string>();

    /// <summary>
    /// Loads the checkpoint into <paramref name="module"/>'s parameters and persistent buffers, converting
    /// dtypes. Strict by default: a missing key, an unexpected key or a shape mismatch is an error naming the key.
    /// <paramref name="aliases"/> maps a module key to another key to read it from when the key itself is absent.
    /// </summary>
    public void LoadInto(nn.Module module, bool strict = true, IReadOnlyDictionary<string, string>? aliases = null)
    {
        var state = module.state_dict();
        var missing = new List<string>();
        var used = new HashSet<string>();
        var mismatched = new List<string>();
        foreach (var (key, target) in state)
        {
            string src = key;
            if (!_byKey.ContainsKey(src) && aliases != null && aliases.TryGetValue(key, out var alt) && _byKey.ContainsKey(alt)) src = alt;
            if (!_byKey.ContainsKey(src)) { missing.Add(key); continue; }
            var entry = Entry(src);
            if (!entry.Shape.SequenceEqual(target.shape))
            {
                mismatched.Add($"{src}: shape [{string.Join(", ", entry.Shape)}] in {FileOf(src).Path}, expected [{string.Join(", ", target.shape)}]");
                continue;
            }
            used.Add(src);
            ReadInto(src, target);
        }
        if (mismatched.Count > 0)
            throw new SafetensorsFormatException(string.Join("\n", mismatched));
        if (!strict) return;
        var unexpected = _byKey.Keys.Where(k => !used.Contains(k) && !(aliases?.Values.Contains(k) ?? false)).OrderBy(k => k).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
        {
            var msg = new List<string>();
            if (missing.Count > 0) msg.Add($"missing from {Source}: {Describe(missing)}");
            if (unexpected.Count > 0) msg.Add($"unexpected keys in {Source}: {Describe(unexpected)}");
            throw new SafetensorsFormatException(string.Join("; ", msg));
        }
    }

    static string Describe(List<string> keys) =>
        string.Join(", ", keys.Take(10)) + (keys.Count > 10 ? $" … and {keys.Count - 10} more" : "");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
