using System.Buffers.Binary;
using System.IO.Compression;
using PixArtLora.Data.Images;

namespace PixArtLora.Tests.Data;

/// <summary>Builds PNG files chunk by chunk, for decompression bombs and damaged files.</summary>
internal static class HostileImages
{
    static readonly byte[] Signature = { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };

    public static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        System.Text.Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), PngTextChunks.Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    public static byte[] Ihdr(int width, int height, byte colorType)
    {
        var d = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(d, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(4), (uint)height);
        d[8] = 8; d[9] = colorType; // bit depth 8; 0 = grayscale, 2 = RGB
        return Chunk("IHDR", d);
    }

    /// <summary>
    /// A valid grayscale PNG of width × height zero pixels: 20000 × 20000 is 400 MB of pixels in about 400 KB.
    /// Rows are streamed through the compressor so building it never holds the pixels.
    /// </summary>
    public static byte[] ZeroBomb(int width, int height)
    {
        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            const int rowsPerWrite = 50;
            var rows = new byte[(width + 1) * rowsPerWrite]; // each row: filter byte 0 + pixels, all zero
            for (int y = 0; y < height; y += rowsPerWrite) z.Write(rows, 0, (width + 1) * Math.Min(rowsPerWrite, height - y));
        }
        return [.. Signature, .. Ihdr(width, height, 0), .. Chunk("IDAT", compressed.ToArray()), .. Chunk("IEND", [])];
    }

    /// <summary>A PNG whose header claims width × height but whose data is a few bytes: the header alone must be refused.</summary>
    public static byte[] HeaderOnly(int width, int height) =>
        [.. Signature, .. Ihdr(width, height, 2), .. Chunk("IDAT", [0x78, 0x9C, 0x03, 0x00]), .. Chunk("IEND", [])];

    /// <summary>A structurally complete PNG whose compressed pixel data is garbage.</summary>
    public static byte[] GarbageData(int width, int height)
    {
        var garbage = new byte[200];
        new Random(5).NextBytes(garbage);
        garbage[0] = 0x78; garbage[1] = 0x9C;
        return [.. Signature, .. Ihdr(width, height, 2), .. Chunk("IDAT", garbage), .. Chunk("IEND", [])];
    }
}
