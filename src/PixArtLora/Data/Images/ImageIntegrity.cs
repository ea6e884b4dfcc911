using System.Buffers.Binary;

namespace PixArtLora.Data.Images;

/// <summary>
/// Structural completeness checks, run before decoding. ImageSharp 2.1 decodes many cut-off files without
/// complaint (a truncated BMP, GIF, lossy WebP, or a PNG without its IEND loads with the missing rows blank),
/// which would silently put half-gray images into training. Each check walks the container far enough to
/// know whether the file ends where its own structure says it should; it does not validate pixel data.
/// </summary>
internal static class ImageIntegrity
{
    /// <summary>Null when the bytes are complete for <paramref name="format"/>, else why they look cut off.</summary>
    public static string? FindTruncation(ReadOnlySpan<byte> data, string format) => format switch
    {
        "PNG" => CheckPng(data),
        "JPEG" => CheckJpeg(data),
        "GIF" => CheckGif(data),
        "WEBP" => CheckWebp(data),
        "BMP" => CheckBmp(data),
        _ => null,
    };

    static string? CheckPng(ReadOnlySpan<byte> d)
    {
        long pos = 8; // signature
        while (pos + 8 <= d.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(d.Slice((int)pos, 4));
            var type = d.Slice((int)pos + 4, 4);
            long end = pos + 12 + length; // length + type + data + crc
            if (end > d.Length) return $"PNG chunk '{Ascii(type)}' at byte {pos} needs {length} data bytes but the file ends at byte {d.Length}";
            if (type.SequenceEqual("IEND"u8)) return null;
            pos = end;
        }
        return $"PNG has no IEND chunk: the file ends at byte {d.Length} before the image is complete";
    }

    static string? CheckJpeg(ReadOnlySpan<byte> d)
    {
        int pos = 2; // SOI
        while (true)
        {
            if (pos >= d.Length) break;
            if (d[pos] != 0xFF) return $"JPEG marker expected at byte {pos}, found 0x{d[pos]:X2}";
            while (pos < d.Length && d[pos] == 0xFF) pos++; // fill bytes
            if (pos >= d.Length) break;
            byte marker = d[pos++];
            if (marker == 0xD9) return null; // EOI
            if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue; // no length field
            if (pos + 2 > d.Length) break;
            int length = BinaryPrimitives.ReadUInt16BigEndian(d.Slice(pos, 2));
            if (length < 2) return $"JPEG segment 0xFF{marker:X2} at byte {pos - 2} has invalid length {length}";
            pos += length;
            if (pos > d.Length) break;
            if (marker == 0xDA) pos = SkipEntropyCodedData(d, pos);
        }
        return $"JPEG has no end-of-image marker: the file ends at byte {d.Length} before the image is complete";
    }

    // Entropy-coded data escapes 0xFF as FF 00 and may contain restart markers FF D0..D7; any other
    // FF xx is the next marker.
    static int SkipEntropyCodedData(ReadOnlySpan<byte> d, int pos)
    {
        while (pos + 1 < d.Length)
        {
            if (d[pos] == 0xFF)
            {
                byte next = d[pos + 1];
                if (next == 0x00 || (next >= 0xD0 && next <= 0xD7) || next == 0xFF) { pos += next == 0xFF ? 1 : 2; continue; }
                return pos;
            }
            pos++;
        }
        return d.Length;
    }

    static string? CheckGif(ReadOnlySpan<byte> d)
    {
        if (d.Length < 13) return $"GIF header needs 13 bytes, the file has {d.Length}";
        int pos = 13;
        byte flags = d[10];
        if ((flags & 0x80) != 0) pos += 3 << ((flags & 0x07) + 1); // global color table
        while (pos < d.Length)
        {
            byte block = d[pos++];
            if (block == 0x3B) return null; // trailer
            if (block == 0x21) { pos++; pos = SkipSubBlocks(d, pos); }
            else if (block == 0x2C)
            {
                if (pos + 9 > d.Length) break;
                byte local = d[pos + 8];
                pos += 9;
                if ((local & 0x80) != 0) pos += 3 << ((local & 0x07) + 1);
                pos++; // LZW minimum code size
                pos = SkipSubBlocks(d, pos);
            }
            else return $"GIF block type 0x{block:X2} at byte {pos - 1} is not an extension, image or trailer";
            if (pos < 0) break;
        }
        return $"GIF has no trailer: the file ends at byte {d.Length} before the image is complete";
    }

    static int SkipSubBlocks(ReadOnlySpan<byte> d, int pos)
    {
        while (pos < d.Length)
        {
            int size = d[pos];
            pos += 1 + size;
            if (size == 0) return pos;
        }
        return -1;
    }

    static string? CheckWebp(ReadOnlySpan<byte> d)
    {
        if (d.Length < 12) return $"WebP header needs 12 bytes, the file has {d.Length}";
        long declared = BinaryPrimitives.ReadUInt32LittleEndian(d.Slice(4, 4)) + 8L;
        return d.Length < declared ? $"WebP RIFF header declares {declared} bytes but the file has {d.Length}" : null;
    }

    static string? CheckBmp(ReadOnlySpan<byte> d)
    {
        if (d.Length < 26) return $"BMP header needs at least 26 bytes, the file has {d.Length}";
        long offBits = BinaryPrimitives.ReadUInt32LittleEndian(d.Slice(10, 4));
        int dibSize = BinaryPrimitives.ReadInt32LittleEndian(d.Slice(14, 4));
        long width, height; int bpp; uint compression = 0;
        if (dibSize == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(d.Slice(18, 2));
            height = BinaryPrimitives.ReadUInt16LittleEndian(d.Slice(20, 2));
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(d.Slice(24, 2));
        }
        else
        {
            if (d.Length < 34) return $"BMP info header needs 34 bytes, the file has {d.Length}";
            width = BinaryPrimitives.ReadInt32LittleEndian(d.Slice(18, 4));
            height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(d.Slice(22, 4)));
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(d.Slice(28, 2));
            compression = BinaryPrimitives.ReadUInt32LittleEndian(d.Slice(30, 4));
        }
        long needed;
        if (compression is 0 or 3 or 6) needed = offBits + ((width * bpp + 31) / 32) * 4 * height; // uncompressed rows
        else needed = BinaryPrimitives.ReadUInt32LittleEndian(d.Slice(2, 4)); // RLE etc.: trust the declared file size
        return d.Length < needed ? $"BMP needs {needed} bytes for its pixel rows but the file has {d.Length}" : null;
    }

    static string Ascii(ReadOnlySpan<byte> b) => string.Concat(b.ToArray().Select(c => c is >= 32 and < 127 ? (char)c : '?'));
}
