using TorchSharp;

namespace PixArtLora.IO;

/// <summary>One storage of a <c>torch.save</c> zip archive: the raw bytes in <c>data/{Key}</c>, typed.</summary>
public sealed record PthStorage(string Key, torch.ScalarType Dtype, long ElementCount, string Location);

/// <summary>
/// A tensor as <c>torch._utils._rebuild_tensor_v2</c> describes it: a view (offset, shape, stride, in
/// elements) into a storage. Nothing is read until <see cref="PthFile.Read(string)"/> asks for it.
/// </summary>
public sealed record PthTensorInfo(PthStorage Storage, long StorageOffset, long[] Shape, long[] Stride)
{
    public torch.ScalarType Dtype => Storage.Dtype;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>An allow-listed Python global (module.name) met while unpickling.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A Python dict or collections.OrderedDict, keys kept in insertion order.</summary>
internal sealed class PickleDict
{
    readonly List<object> _keys = new();
    readonly Dictionary<object, object?> _values = new();

    /// <summary>Instance attributes set by BUILD (an OrderedDict state dict carries <c>_metadata</c>).</summary>
    public Dictionary<string, object?> Attributes { get; } = new();

    public IReadOnlyList<object> Keys => _keys;
    public int Count => _keys.Count;

    public void Set(object? key, object? value, string where)
    {
        if (key is null or object?[] or List<object?> or PickleDict)
            throw new PthFormatException($"{where}: dictionary key of type {PthUnpickler.Describe(key)} is not supported");
        if (!_values.ContainsKey(key)) _keys.Add(key);
        _values[key] = value;
    }

    public bool TryGet(object key, out object? value) => _values.TryGetValue(key, out value);
    public object? this[object key] => _values[key];
}

/// <summary>A Python set or frozenset (rare in checkpoints; kept as a list).</summary>
internal sealed class PickleSet
{
    public List<object?> Items { get; } = new();
}
