namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// Rewrites one integer field inside a serialized protobuf message without a schema: just enough of the
/// wire format (varint, 64-bit, length-delimited, 32-bit records) to walk to a nested field and re-encode
/// the enclosing lengths. Used to patch SentencePiece model files before Microsoft.ML.Tokenizers reads them.
/// </summary>
public static class ProtobufFieldRewriter
{
    /// <summary>
    /// Returns a copy of <paramref name="message"/> in which the varint field at <paramref name="path"/> (field
    /// numbers from the outside in, e.g. [2, 41] = trainer_spec.bos_id of a SentencePiece ModelProto) holds
    /// <paramref name="value"/> (int32 semantics: negative values take 10 bytes). Earlier occurrences of the
    /// field are removed; an absent field (or enclosing message) is added.
    /// </summary>
    public static byte[] SetVarint(ReadOnlySpan<byte> message, IReadOnlyList<int> path, long value)
    {
        if (path.Count == 0) throw new ArgumentException("field path is empty", nameof(path));
        var output = new List<byte>(message.Length + 16);
        int field = path[0];
        byte[]? nested = null;
        int pos = 0;
        while (pos < message.Length)
        {
            int start = pos;
            ulong tag = ReadVarint(message, ref pos);
            int number = (int)(tag >> 3), wire = (int)(tag & 7);
            int payloadStart = pos;
            SkipPayload(message, wire, ref pos, number);
            if (number != field) { output.AddRange(message[start..pos].ToArray()); continue; }
            if (path.Count == 1)
            {
                if (wire != 0) throw new InvalidDataException($"protobuf field {number} has wire type {wire}, expected a varint");
                continue; // dropped; the new value is appended below
            }
            if (wire != 2) throw new InvalidDataException($"protobuf field {number} has wire type {wire}, expected an embedded message");
            int inner = payloadStart;
            ulong length = ReadVarint(message, ref inner);
            // Repeated occurrences of an embedded message merge; keep them concatenated and patch the result.
            nested = Concat(nested, message.Slice(inner, (int)length));
        }
        if (path.Count == 1)
        {
            WriteVarint(output, ((ulong)field << 3) | 0);
            WriteVarint(output, unchecked((ulong)value));
        }
        else
        {
            var patched = SetVarint(nested ?? Array.Empty<byte>(), path.Skip(1).ToList(), value);
            WriteVarint(output, ((ulong)field << 3) | 2);
            WriteVarint(output, (ulong)patched.Length);
            output.AddRange(patched);
        }
        return output.ToArray();
    }

    /// <summary>The last value of the varint field at <paramref name="path"/>, or null when absent.</summary>
    public static long? GetVarint(ReadOnlySpan<byte> message, IReadOnlyList<int> path)
    {
        long? found = null;
        int pos = 0;
        while (pos < message.Length)
        {
            ulong tag = ReadVarint(message, ref pos);
            int number = (int)(tag >> 3), wire = (int)(tag & 7);
            int payloadStart = pos;
            SkipPayload(message, wire, ref pos, number);
            if (number != path[0]) continue;
            int inner = payloadStart;
            if (path.Count == 1 && wire == 0) found = unchecked((long)ReadVarint(message, ref inner));
            else if (path.Count > 1 && wire == 2)
            {
                ulong length = ReadVarint(message, ref inner);
                found = GetVarint(message.Slice(inner, (int)length), path.Skip(1).ToList()) ?? found;
            }
        }
        return found;
    }

    /// <summary>How many times field <paramref name="number"/> occurs at the top level of the message.</summary>
    public static int CountField(ReadOnlySpan<byte> message, int number)
    {
        int count = 0, pos = 0;
        while (pos < message.Length)
        {
            ulong tag = ReadVarint(message, ref pos);
            int field = (int)(tag >> 3);
            SkipPayload(message, (int)(tag & 7), ref pos, field);
            if (field == number) count++;
        }
        return count;
    }

    static byte[] Concat(byte[]? a, ReadOnlySpan<byte> b) => a == null ? b.ToArray() : a.Concat(b.ToArray()).ToArray();

    static void SkipPayload(ReadOnlySpan<byte> message, int wire, ref int pos, int number)
    {
        switch (wire)
        {
            case 0: ReadVarint(message, ref pos); break;
            case 1: pos += 8; break;
            case 2:
                ulong length = ReadVarint(message, ref pos);
                if (length > (ulong)(message.Length - pos)) throw new InvalidDataException($"protobuf field {number}: length {length} runs past the end of the message");
                pos += (int)length;
                break;
            case 5: pos += 4; break;
            default: throw new InvalidDataException($"protobuf field {number}: unsupported wire type {wire}");
        }
        if (pos > message.Length) throw new InvalidDataException($"protobuf field {number} runs past the end of the message");
    }

    static ulong ReadVarint(ReadOnlySpan<byte> data, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= data.Length) throw new InvalidDataException("protobuf varint runs past the end of the message");
            byte b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("protobuf varint longer than 10 bytes");
    }

    static void WriteVarint(List<byte> output, ulong value)
    {
        while (value >= 0x80) { output.Add((byte)(value | 0x80)); value >>= 7; }
        output.Add((byte)value);
    }
}
