using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace PixArtLora.Tests.Conversion;

/// <summary>
/// Writes torch.save-style zip archives byte by byte (pickle protocol 2 opcodes as CPython emits them), for
/// cases the reference fixtures do not cover: other dtypes, strided views, other wrappers, hostile pickles.
/// </summary>
public sealed class TorchZipBuilder
{
    readonly MemoryStream _pickle = new();
    readonly Dictionary<string, byte[]> _storages = new();

    public TorchZipBuilder() => Op(0x80, 2); // PROTO 2

    public TorchZipBuilder Op(params byte[] bytes) { _pickle.Write(bytes); return this; }
    public TorchZipBuilder Mark() => Op((byte)'(');
    public TorchZipBuilder EmptyDict() => Op((byte)'}');
    public TorchZipBuilder SetItems() => Op((byte)'u');
    public TorchZipBuilder SetItem() => Op((byte)'s');
    public TorchZipBuilder Tuple() => Op((byte)'t');
    public TorchZipBuilder Reduce() => Op((byte)'R');
    public TorchZipBuilder Stop() => Op((byte)'.');
    public TorchZipBuilder False() => Op(0x89);
    public TorchZipBuilder EmptyTuple() => Op((byte)')');

    public TorchZipBuilder Global(string module, string name) => Op(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

    public TorchZipBuilder Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        var len = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
        return Op((byte)'X').Op(len).Op(b);
    }

    public TorchZipBuilder Int(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        return Op((byte)'J').Op(b);
    }

    public TorchZipBuilder IntTuple(params long[] values)
    {
        Mark();
        foreach (var v in values) Int((int)v);
        return Tuple();
    }

    /// <summary>Pushes <c>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())</c> over a new storage.</summary>
    public TorchZipBuilder Tensor(string storageType, string key, byte[] data, int elementCount, long offset, long[] size, long[] stride)
    {
        _storages[key] = data;
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(elementCount).Tuple().Op((byte)'Q');
        Int((int)offset).IntTuple(size).IntTuple(stride).False();
        Global("collections", "OrderedDict").EmptyTuple().Reduce();
        return Tuple().Reduce();
    }

    /// <summary>Writes the archive: <c>{folder}/data.pkl</c>, <c>{folder}/data/{key}</c> (stored, uncompressed), <c>{folder}/version</c>.</summary>
    public string Save(string path, string folder = "archive")
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string name, byte[] bytes)
        {
            var e = zip.CreateEntry($"{folder}/{name}", CompressionLevel.NoCompression);
            using var s = e.Open();
            s.Write(bytes);
        }
        Add("data.pkl", _pickle.ToArray());
        foreach (var (key, data) in _storages) Add($"data/{key}", data);
        Add("version", "3\n"u8.ToArray());
        return path;
    }

    public static byte[] Floats(params float[] values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), values[i]);
        return b;
    }
}
