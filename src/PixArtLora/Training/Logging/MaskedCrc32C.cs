using System.Buffers.Binary;
using System.Numerics;

namespace PixArtLora.Training.Logging;

/// <summary>
/// CRC-32C (Castagnoli), as TFRecord framing uses it, computed with <see cref="BitOperations.Crc32C(uint, ulong)"/>
/// (hardware instructions where present), and TensorFlow's masking of stored CRCs.
/// </summary>
public static class MaskedCrc32C
{
    /// <summary>The standard CRC-32C of <paramref name="data"/> (initial value and final xor 0xFFFFFFFF).</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8) crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++) crc = BitOperations.Crc32C(crc, data[i]);
        return crc ^ 0xFFFFFFFFu;
    }

    /// <summary>TensorFlow's mask: rotate right by 15 bits and add 0xa282ead8 (so a CRC of CRCs is not trivial).</summary>
    public static uint Mask(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);

    /// <summary>The masked CRC-32C of <paramref name="data"/>, the value a TFRecord stores.</summary>
    public static uint ComputeMasked(ReadOnlySpan<byte> data) => Mask(Compute(data));
}
