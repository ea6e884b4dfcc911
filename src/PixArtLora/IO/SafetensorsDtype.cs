using TorchSharp;

namespace PixArtLora.IO;

/// <summary>The dtype names of the safetensors format and their TorchSharp equivalents.</summary>
public static class SafetensorsDtype
{
    static readonly Dictionary<string, (torch.ScalarType Type, int Size)> ByName = new()
    {
        ["F64"] = (torch.ScalarType.Float64, 8),
        ["F32"] = (torch.ScalarType.Float32, 4),
        ["F16"] = (torch.ScalarType.Float16, 2),
        ["BF16"] = (torch.ScalarType.BFloat16, 2),
        ["I64"] = (torch.ScalarType.Int64, 8),
        ["I32"] = (torch.ScalarType.Int32, 4),
        ["I16"] = (torch.ScalarType.Int16, 2),
        ["I8"] = (torch.ScalarType.Int8, 1),
        ["U8"] = (torch.ScalarType.Byte, 1),
        ["BOOL"] = (torch.ScalarType.Bool, 1),
    };

    /// <summary>All dtype names this implementation reads and writes.</summary>
    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static bool TryParse(string name, out torch.ScalarType type, out int elementSize)
    {
        if (ByName.TryGetValue(name, out var e)) { type = e.Type; elementSize = e.Size; return true; }
        type = default; elementSize = 0; return false;
    }

    public static string NameOf(torch.ScalarType type)
    {
        foreach (var (name, e) in ByName)
            if (e.Type == type) return name;
        throw new NotSupportedException($"dtype {type} cannot be stored in safetensors (supported: {string.Join(", ", ByName.Keys)})");
    }

    public static int SizeOf(torch.ScalarType type) => ByName[NameOf(type)].Size;
}
