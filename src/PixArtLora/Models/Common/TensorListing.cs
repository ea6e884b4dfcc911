using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Common;

/// <summary>Name, shape and dtype (safetensors spelling: F32, BF16 …) of one tensor of a model or checkpoint.</summary>
public sealed record TensorInfo(string Name, long[] Shape, string Dtype)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>Lists the tensors of a module (its state dict) or of a safetensors checkpoint, and compares two listings.</summary>
public static class TensorListing
{
    /// <summary>Parameters and persistent buffers of <paramref name="module"/>, in state-dict order. Works on the meta device.</summary>
    public static IReadOnlyList<TensorInfo> Of(nn.Module module) =>
        module.state_dict().Select(kv => new TensorInfo(kv.Key, kv.Value.shape, SafetensorsDtype.NameOf(kv.Value.dtype))).ToList();

    /// <summary>The tensors stored in <paramref name="checkpoint"/>, sorted by name.</summary>
    public static IReadOnlyList<TensorInfo> Of(SafetensorsCheckpoint checkpoint) =>
        checkpoint.Keys.OrderBy(k => k, StringComparer.Ordinal)
            .Select(k => checkpoint.Entry(k)).Select(e => new TensorInfo(e.Name, e.Shape, e.Dtype)).ToList();

    /// <summary>
    /// Differences between what a model expects and what a checkpoint holds: missing keys, unexpected keys and shape
    /// mismatches, one message each (empty when they agree; dtypes may differ, loading converts them).
    /// </summary>
    public static IReadOnlyList<string> Compare(IReadOnlyList<TensorInfo> expected, IReadOnlyList<TensorInfo> actual)
    {
        var have = actual.ToDictionary(t => t.Name);
        var want = expected.ToDictionary(t => t.Name);
        var problems = new List<string>();
        foreach (var e in expected)
        {
            if (!have.TryGetValue(e.Name, out var a)) problems.Add($"missing: {e.Name} {e.ShapeText}");
            else if (!a.Shape.SequenceEqual(e.Shape)) problems.Add($"shape: {e.Name} is {a.ShapeText}, expected {e.ShapeText}");
        }
        problems.AddRange(actual.Where(a => !want.ContainsKey(a.Name)).Select(a => $"unexpected: {a.Name} {a.ShapeText}"));
        return problems;
    }
}
