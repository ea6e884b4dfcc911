using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace PixArtLora.Data.Images;

/// <summary>One textual entry of a PNG file (tEXt, zTXt or iTXt chunk).</summary>
public readonly record struct PngTextEntry(string Keyword, string Text);

/// <summary>
/// Reads and writes PNG text chunks directly, so the keyword, chunk type and placement are exactly what other
/// Stable Diffusion tools expect: PIL's <c>PngInfo.add_text</c> writes <c>tEXt</c> when the text is Latin-1 and
/// an uncompressed <c>iTXt</c> (UTF-8) otherwise; we do the same and never compress. Readers accept all three kinds.
/// </summary>
public static class PngTextChunks
{
    static readonly byte[] Signature = { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };
    static readonly Encoding Latin1 = Encoding.Latin1;

    // Decompressed text is capped so that a zTXt "zip bomb" in a hostile PNG cannot exhaust memory.
    const int MaxTextBytes = 16 * 1024 * 1024;

    /// <summary>True when <paramref name="data"/> starts with the PNG signature.</summary>
    public static bool IsPng(ReadOnlySpan<byte> data) => data.Length >= 8 && data[..8].SequenceEqual(Signature);

    /// <summary>Returns a copy of <paramref name="png"/> with a text chunk inserted before the first IDAT chunk.</summary>
    public static byte[] Insert(byte[] png, string keyword, string text)
    {
        if (!IsPng(png)) throw new ArgumentException("not a PNG file (signature missing)");
        CheckKeyword(keyword);
        byte[] chunk = BuildChunk(keyword, text);
        int at = FindChunk(png, "IDAT"u8) ?? throw new ArgumentException("PNG has no IDAT chunk");
        var result = new byte[png.Length + chunk.Length];
        png.AsSpan(0, at).CopyTo(result);
        chunk.CopyTo(result.AsSpan(at));
        png.AsSpan(at).CopyTo(result.AsSpan(at + chunk.Length));
        return result;
    }

    /// <summary>Every text entry of a PNG, in file order. Damaged text chunks are skipped; a damaged PNG structure is an error.</summary>
    public static IReadOnlyList<PngTextEntry> Read(ReadOnlySpan<byte> png, string source = "PNG")
    {
        if (!IsPng(png)) throw new InvalidDataException($"{source}: not a PNG file (signature missing)");
        var entries = new List<PngTextEntry>();
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(png.Slice(pos, 4));
            if (pos + 12 + length > png.Length) throw new InvalidDataException($"{source}: PNG chunk at byte {pos} runs past the end of the file");
            var type = png.Slice(pos + 4, 4);
            var data = png.Slice(pos + 8, (int)length);
            if (type.SequenceEqual("IEND"u8)) break;
            var entry = type.SequenceEqual("tEXt"u8) ? ParseText(data)
                : type.SequenceEqual("zTXt"u8) ? ParseCompressedText(data)
                : type.SequenceEqual("iTXt"u8) ? ParseInternationalText(data)
                : null;
            if (entry is { } e) entries.Add(e);
            pos += 12 + (int)length;
        }
        return entries;
    }

    static byte[] BuildChunk(string keyword, string text)
    {
        bool latin1 = text.All(c => c <= 0xFF);
        byte[] payload;
        byte[] type;
        if (latin1)
        {
            type = "tEXt"u8.ToArray();
            payload = [.. Latin1.GetBytes(keyword), 0, .. Latin1.GetBytes(text)];
        }
        else
        {
            // keyword \0, compression flag 0, method 0, empty language tag \0, empty translated keyword \0, UTF-8 text
            type = "iTXt"u8.ToArray();
            payload = [.. Latin1.GetBytes(keyword), 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(text)];
        }
        var chunk = new byte[12 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)payload.Length);
        type.CopyTo(chunk, 4);
        payload.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + payload.Length), Crc32(chunk.AsSpan(4, 4 + payload.Length)));
        return chunk;
    }

    static PngTextEntry? ParseText(ReadOnlySpan<byte> d)
    {
        int z = d.IndexOf((byte)0);
        if (z <= 0) return null;
        return new PngTextEntry(Latin1.GetString(d[..z]), Latin1.GetString(d[(z + 1)..]));
    }

    static PngTextEntry? ParseCompressedText(ReadOnlySpan<byte> d)
    {
        int z = d.IndexOf((byte)0);
        if (z <= 0 || z + 2 > d.Length || d[z + 1] != 0) return null;
        var text = Inflate(d[(z + 2)..]);
        return text == null ? null : new PngTextEntry(Latin1.GetString(d[..z]), Latin1.GetString(text));
    }

    static PngTextEntry? ParseInternationalText(ReadOnlySpan<byte> d)
    {
        int z = d.IndexOf((byte)0);
        if (z <= 0 || z + 3 > d.Length) return null;
        bool compressed = d[z + 1] == 1;
        var rest = d[(z + 3)..];
        int lang = rest.IndexOf((byte)0);
        if (lang < 0) return null;
        rest = rest[(lang + 1)..];
        int translated = rest.IndexOf((byte)0);
        if (translated < 0) return null;
        rest = rest[(translated + 1)..];
        byte[]? text = compressed ? Inflate(rest) : rest.ToArray();
        return text == null ? null : new PngTextEntry(Latin1.GetString(d[..z]), Encoding.UTF8.GetString(text));
    }

    static byte[]? Inflate(ReadOnlySpan<byte> zlib)
    {
        try
        {
            using var input = new ZLibStream(new MemoryStream(zlib.ToArray()), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = input.Read(buffer)) > 0)
            {
                if (output.Length + n > MaxTextBytes) return null;
                output.Write(buffer, 0, n);
            }
            return output.ToArray();
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    static int? FindChunk(ReadOnlySpan<byte> png, ReadOnlySpan<byte> wanted)
    {
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            if (png.Slice(pos + 4, 4).SequenceEqual(wanted)) return pos;
            pos += 12 + (int)BinaryPrimitives.ReadUInt32BigEndian(png.Slice(pos, 4));
        }
        return null;
    }

    static void CheckKeyword(string keyword)
    {
        if (keyword.Length is < 1 or > 79 || keyword.Any(c => c < 32 || c > 0xFF) || keyword != keyword.Trim())
            throw new ArgumentException($"PNG text keyword '{keyword}' must be 1-79 Latin-1 characters without leading or trailing spaces");
    }

    static readonly uint[] CrcTable = BuildCrcTable();

    static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }

    /// <summary>The PNG chunk CRC (ISO 3309 / zlib CRC-32) over chunk type and data.</summary>
    internal static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in bytes) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
