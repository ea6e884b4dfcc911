using System.Buffers.Binary;
using System.Text;
using Xunit.Sdk;

namespace PixArtLora.Tests.Training;

/// <summary>
/// Reads a TensorBoard event file independently of the writer: TFRecord framing with both CRCs checked
/// (CRC-32C computed bit by bit here, not with the library's code) and a minimal protobuf decoder.
/// </summary>
static class TensorBoardEventReader
{
    public sealed record Value(string Tag, float? Simple, ImageValue? Image, string? Text);
    public sealed record ImageValue(int Height, int Width, int Colorspace, byte[] Encoded);
    public sealed record Event(double WallTime, long Step, string? FileVersion, List<Value> Values, int? SessionStatus);

    public static List<Event> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (bytes.Length - pos < 12) throw new XunitException($"{path}: truncated record header at byte {pos}");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(pos));
            uint lengthCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8));
            if (lengthCrc != MaskedCrc(bytes.AsSpan(pos, 8)))
                throw new XunitException($"{path}: length CRC mismatch at byte {pos}");
            int start = pos + 12;
            if ((ulong)(bytes.Length - start) < length + 4) throw new XunitException($"{path}: truncated record at byte {pos}");
            var data = bytes.AsSpan(start, (int)length);
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(start + (int)length));
            if (dataCrc != MaskedCrc(data)) throw new XunitException($"{path}: data CRC mismatch in record at byte {pos}");
            events.Add(ParseEvent(data.ToArray()));
            pos = start + (int)length + 4;
        }
        return events;
    }

    /// <summary>CRC-32C, reflected polynomial 0x82F63B78, bit by bit; then TensorFlow's mask.</summary>
    public static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        crc = ~crc;
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    static Event ParseEvent(byte[] data)
    {
        double wall = 0; long step = 0; string? version = null; int? session = null;
        var values = new List<Value>();
        foreach (var (field, raw, varint) in Fields(data))
        {
            switch (field)
            {
                case 1: wall = BitConverter.Int64BitsToDouble((long)varint); break;
                case 2: step = (long)varint; break;
                case 3: version = Encoding.UTF8.GetString(raw!); break;
                case 5:
                    foreach (var (f, v, _) in Fields(raw!)) if (f == 1) values.Add(ParseValue(v!));
                    break;
                case 7:
                    foreach (var (f, _, s) in Fields(raw!)) if (f == 1) session = (int)s;
                    break;
            }
        }
        return new Event(wall, step, version, values, session);
    }

    static Value ParseValue(byte[] data)
    {
        string tag = ""; float? simple = null; ImageValue? image = null; string? text = null;
        foreach (var (field, raw, bits) in Fields(data))
        {
            if (field == 1) tag = Encoding.UTF8.GetString(raw!);
            else if (field == 2) simple = BitConverter.Int32BitsToSingle((int)bits);
            else if (field == 4)
            {
                int h = 0, w = 0, cs = 0; byte[] enc = Array.Empty<byte>();
                foreach (var (f, r, v) in Fields(raw!))
                {
                    if (f == 1) h = (int)v; else if (f == 2) w = (int)v; else if (f == 3) cs = (int)v; else if (f == 4) enc = r!;
                }
                image = new ImageValue(h, w, cs, enc);
            }
            else if (field == 8)
                foreach (var (f, r, _) in Fields(raw!)) if (f == 8) text = Encoding.UTF8.GetString(r!);
        }
        return new Value(tag, simple, image, text);
    }

    /// <summary>(field number, bytes of a length-delimited field, or the raw bits of a varint/fixed field).</summary>
    static IEnumerable<(int Field, byte[]? Raw, ulong Bits)> Fields(byte[] data)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            ulong key = Varint(data, ref pos);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, null, Varint(data, ref pos)); break;
                case 1: yield return (field, null, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(pos))); pos += 8; break;
                case 5: yield return (field, null, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos))); pos += 4; break;
                case 2:
                    int len = (int)Varint(data, ref pos);
                    yield return (field, data.AsSpan(pos, len).ToArray(), 0);
                    pos += len;
                    break;
                default: throw new XunitException($"unexpected protobuf wire type {wire} for field {field}");
            }
        }
    }

    static ulong Varint(byte[] data, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
    }
}
