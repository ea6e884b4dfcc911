using System.Buffers.Binary;
using System.Text;

namespace PixArtLora.Tests.Server;

/// <summary>
/// A minimal PNG tEXt writer/reader for the server tests only: the test backend stamps its images the way the real
/// pipeline will (keyword <c>parameters</c>), and the tests read the chunk back from downloaded files. The library's
/// own PNG text support lives in Data/Images.
/// </summary>
internal static class PngTextChunk
{
    static readonly byte[] Signature = { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };

    // PNG's CRC-32 (ISO 3309, reflected polynomial 0xEDB88320) over chunk type and data.
    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    static uint Crc(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in bytes) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>Inserts a tEXt chunk right after IHDR (the first chunk, 8 + 25 bytes into the file).</summary>
    public static byte[] Insert(byte[] png, string keyword, string text)
    {
        Assert.True(png.AsSpan(0, 8).SequenceEqual(Signature), "not a PNG");
        var data = Encoding.Latin1.GetBytes(keyword).Concat(new byte[] { 0 }).Concat(Encoding.Latin1.GetBytes(text)).ToArray();
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes("tEXt").CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc(chunk.AsSpan(4, 4 + data.Length)));
        const int afterHeader = 8 + 12 + 13;
        return png[..afterHeader].Concat(chunk).Concat(png[afterHeader..]).ToArray();
    }

    /// <summary>The text of the tEXt chunk named <paramref name="keyword"/>, checking every chunk's CRC on the way.</summary>
    public static string? Read(byte[] png, string keyword)
    {
        Assert.True(png.AsSpan(0, 8).SequenceEqual(Signature), "not a PNG");
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            string type = Encoding.ASCII.GetString(png, pos + 4, 4);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + length));
            Assert.Equal(crc, Crc(png.AsSpan(pos + 4, 4 + length)));
            if (type == "tEXt")
            {
                var data = png.AsSpan(pos + 8, length);
                int nul = data.IndexOf((byte)0);
                if (Encoding.Latin1.GetString(data[..nul]) == keyword) return Encoding.Latin1.GetString(data[(nul + 1)..]);
            }
            if (type == "IEND") break;
            pos += 12 + length;
        }
        return null;
    }
}
