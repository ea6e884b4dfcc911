using TorchSharp;

namespace PixArtLora.IO;

/// <summary>The typed storage classes torch.save names in persistent ids (<c>torch.FloatStorage</c>, ...).</summary>
internal static class PthStorageTypes
{
    static readonly Dictionary<string, (torch.ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = (torch.ScalarType.Float32, 4),
        ["DoubleStorage"] = (torch.ScalarType.Float64, 8),
        ["HalfStorage"] = (torch.ScalarType.Float16, 2),
        ["BFloat16Storage"] = (torch.ScalarType.BFloat16, 2),
        ["LongStorage"] = (torch.ScalarType.Int64, 8),
        ["IntStorage"] = (torch.ScalarType.Int32, 4),
        ["ShortStorage"] = (torch.ScalarType.Int16, 2),
        ["CharStorage"] = (torch.ScalarType.Int8, 1),
        ["ByteStorage"] = (torch.ScalarType.Byte, 1),
        ["BoolStorage"] = (torch.ScalarType.Bool, 1),
    };

    public static bool IsStorageType(string name) => ByName.ContainsKey(name);

    public static (torch.ScalarType Type, int Size) Get(string name) => ByName[name];

    public static int SizeOf(torch.ScalarType type) => ByName.Values.First(v => v.Type == type).Size;
}
