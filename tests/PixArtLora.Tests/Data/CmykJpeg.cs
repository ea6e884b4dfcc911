using System.Buffers.Binary;
using System.Numerics;

namespace PixArtLora.Tests.Data;

/// <summary>
/// Writes a baseline 4-component (Adobe CMYK) JPEG, which ImageSharp 2.1 cannot encode. Each 8×8 block is one
/// flat colour, so every block is a DC coefficient and an end-of-block: quantisation 1, a DC Huffman table
/// giving each size category a 4-bit code, an AC table whose only symbol is EOB. Stored values follow the Adobe
/// convention (inverted: 255 = no ink), as Photoshop writes and PIL/libjpeg read.
/// </summary>
internal static class CmykJpeg
{
    /// <param name="blocks">[blockRow, blockCol] → stored (C, M, Y, K) bytes.</param>
    public static byte[] Encode((byte C, byte M, byte Y, byte K)[,] blocks)
    {
        int rows = blocks.GetLength(0), cols = blocks.GetLength(1);
        var o = new List<byte> { 0xFF, 0xD8 };
        Segment(o, 0xEE, [.. "Adobe"u8.ToArray(), 0, 100, 0, 0, 0, 0, 0]); // APP14, transform 0 = CMYK
        Segment(o, 0xDB, [0, .. Enumerable.Repeat((byte)1, 64)]); // DQT table 0, all ones
        var sof = new List<byte> { 8, (byte)(rows * 8 >> 8), (byte)(rows * 8), (byte)(cols * 8 >> 8), (byte)(cols * 8), 4 };
        for (byte c = 1; c <= 4; c++) sof.AddRange([c, 0x11, 0]);
        Segment(o, 0xC0, sof.ToArray());
        // DC table 0: 12 codes of length 4 for categories 0..11. AC table 0: one code of length 1 for EOB (0x00).
        var dcBits = new byte[16]; dcBits[3] = 12;
        Segment(o, 0xC4, [0x00, .. dcBits, .. Enumerable.Range(0, 12).Select(i => (byte)i)]);
        var acBits = new byte[16]; acBits[0] = 1;
        Segment(o, 0xC4, [0x10, .. acBits, 0x00]);
        var sos = new List<byte> { 4 };
        for (byte c = 1; c <= 4; c++) sos.AddRange([c, 0x00]);
        sos.AddRange([0, 63, 0]);
        Segment(o, 0xDA, sos.ToArray());

        var bits = new BitWriter();
        var previous = new int[4];
        for (int r = 0; r < rows; r++)
            for (int col = 0; col < cols; col++)
            {
                var (c, m, y, k) = blocks[r, col];
                byte[] values = [c, m, y, k];
                for (int comp = 0; comp < 4; comp++)
                {
                    int dc = 8 * (values[comp] - 128); // DC of a flat block after the level shift, quantised by 1
                    int diff = dc - previous[comp];
                    previous[comp] = dc;
                    int category = diff == 0 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)Math.Abs(diff));
                    bits.Write(category, 4); // code i for category i (canonical codes of equal length)
                    if (category > 0) bits.Write(diff > 0 ? diff : diff + (1 << category) - 1, category);
                    bits.Write(0, 1); // EOB
                }
            }
        o.AddRange(bits.Finish());
        o.AddRange([0xFF, 0xD9]);
        return o.ToArray();
    }

    static void Segment(List<byte> o, byte marker, byte[] payload)
    {
        o.AddRange([0xFF, marker]);
        var len = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(len, (ushort)(payload.Length + 2));
        o.AddRange(len);
        o.AddRange(payload);
    }

    sealed class BitWriter
    {
        readonly List<byte> _bytes = new();
        int _acc, _count;

        public void Write(int value, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _acc = (_acc << 1) | ((value >> i) & 1);
                if (++_count == 8) Flush();
            }
        }

        void Flush()
        {
            _bytes.Add((byte)_acc);
            if (_acc == 0xFF) _bytes.Add(0x00); // byte stuffing
            _acc = 0; _count = 0;
        }

        public byte[] Finish()
        {
            while (_count != 0) Write(1, 1); // pad with ones
            return _bytes.ToArray();
        }
    }
}
