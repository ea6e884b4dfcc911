using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Conversion;

/// <summary>
/// Read access to a state dict whatever it is stored in: a torch.save <c>.pth</c> (restricted unpickling)
/// or safetensors (a file, an index.json, or a folder of shards). Tensors are read one at a time.
/// </summary>
public sealed class StateDictReader : IDisposable
{
    readonly PthFile? _pth;
    readonly SafetensorsCheckpoint? _safetensors;

    /// <summary>The file or folder read.</summary>
    public string Source { get; }

    /// <summary>For a .pth, the top-level key the tensors came from (e.g. <c>state_dict</c>); null otherwise.</summary>
    public string? StateDictKey => _pth?.StateDictKey;

    /// <summary>Tensor names (file order for .pth, sorted for safetensors).</summary>
    public IReadOnlyList<string> Names { get; }

    StateDictReader(string source, PthFile? pth, SafetensorsCheckpoint? st)
    {
        Source = source;
        _pth = pth;
        _safetensors = st;
        Names = pth != null ? pth.Names : st!.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Opens a folder, <c>.safetensors</c> or <c>.safetensors.index.json</c> as safetensors, anything else as a
    /// torch.save checkpoint whose state dict is <paramref name="stateDictKey"/> (default: <c>state_dict</c> when present).
    /// </summary>
    public static StateDictReader Open(string path, string? stateDictKey = null, string? preferredSafetensorsName = null)
    {
        bool safetensors = Directory.Exists(path)
                           || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
                           || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        if (safetensors)
        {
            if (stateDictKey != null) throw new ArgumentException($"{path}: a state dict key applies only to .pth checkpoints");
            return new StateDictReader(path, null, SafetensorsCheckpoint.Open(path, preferredSafetensorsName));
        }
        return new StateDictReader(path, PthFile.Open(path, stateDictKey), null);
    }

    public bool Contains(string name) => _pth != null ? _pth.Tensors.ContainsKey(name) : _safetensors!.Contains(name);

    public long[] Shape(string name) => _pth != null ? Info(name).Shape : _safetensors!.Entry(name).Shape;

    public ScalarType Dtype(string name) => _pth != null ? Info(name).Dtype : _safetensors!.Entry(name).ScalarType;

    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype.</summary>
    public Tensor Read(string name) => _pth != null ? _pth.Read(name) : _safetensors!.Read(name);

    PthTensorInfo Info(string name) =>
        _pth!.Tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"tensor '{name}' not found in {Source}");

    public void Dispose()
    {
        _pth?.Dispose();
        _safetensors?.Dispose();
    }
}
