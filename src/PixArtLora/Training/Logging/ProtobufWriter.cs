using System.Buffers.Binary;
using System.Text;

namespace PixArtLora.Training.Logging;

/// <summary>
/// The few pieces of the protocol-buffers wire format the TensorBoard event messages need: varints,
/// 64-bit doubles, 32-bit floats and length-delimited fields (strings, bytes, nested messages).
/// Fields are written in the order called; zero-valued scalars are written too (harmless in proto3).
/// </summary>
public sealed class ProtobufWriter
{
    const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    readonly MemoryStream _buffer = new();

    public ProtobufWriter Varint(int field, long value)
    {
        Tag(field, WireVarint);
        WriteVarint(unchecked((ulong)value));
        return this;
    }

    public ProtobufWriter Double(int field, double value)
    {
        Tag(field, WireFixed64);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(b, value);
        _buffer.Write(b);
        return this;
    }

    public ProtobufWriter Float(int field, float value)
    {
        Tag(field, WireFixed32);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        _buffer.Write(b);
        return this;
    }

    public ProtobufWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, WireLengthDelimited);
        WriteVarint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtobufWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    /// <summary>A nested message field, built by <paramref name="build"/>.</summary>
    public ProtobufWriter Message(int field, Action<ProtobufWriter> build)
    {
        var inner = new ProtobufWriter();
        build(inner);
        return Bytes(field, inner.ToArray());
    }

    public byte[] ToArray() => _buffer.ToArray();

    void Tag(int field, int wireType) => WriteVarint((ulong)((field << 3) | wireType));

    void WriteVarint(ulong v)
    {
        while (v >= 0x80) { _buffer.WriteByte((byte)(v | 0x80)); v >>= 7; }
        _buffer.WriteByte((byte)v);
    }
}
