using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// The softmax backward dS = P ⊙ (dP − rowsum(dP ⊙ P)) on bf16 rows, from the probabilities P alone, in place over dP,
/// with float32 accumulation (what libtorch's fused kernel computes).
/// </summary>
/// <remarks>
/// Why it exists: libtorch only reaches its fused softmax backward through autograd, which needs the scores the
/// probabilities came from, so an attention that keeps P for backward would have to recompute the scores (a GEMM)
/// and the softmax to use it. This kernel needs P only. Measured on the 2-core reference CPU for the scores of a
/// 512-px self-attention (16 × 1024 rows of 1024): 4.4 ms on one thread; libtorch's backward 4.5 ms on two, after a
/// 6.8 ms recomputed softmax and a 4 ms recomputed QKᵀ. AVX-512 only (<see cref="Supported"/>); callers fall back
/// to recomputation elsewhere.
/// </remarks>
public static unsafe class Bf16SoftmaxBackward
{
    /// <summary>Whether this CPU runs the kernel (AVX-512 F and BW).</summary>
    public static bool Supported => Avx512F.IsSupported && Avx512BW.IsSupported;

    /// <summary>
    /// Overwrites <paramref name="gradProbabilities"/> (dP) with the gradient of the scores, given the softmax output
    /// <paramref name="probabilities"/> over the last dimension. Both must be contiguous bf16 CPU tensors of one shape.
    /// </summary>
    public static void ApplyInPlace(Tensor probabilities, Tensor gradProbabilities)
    {
        if (!Supported) throw new PlatformNotSupportedException("Bf16SoftmaxBackward needs AVX-512 (F, BW)");
        foreach (var (t, name) in new[] { (probabilities, "probabilities"), (gradProbabilities, "gradProbabilities") })
        {
            if (t.dtype != ScalarType.BFloat16 || t.device_type != DeviceType.CPU || !t.is_contiguous())
                throw new ArgumentException($"{name}: expected a contiguous bf16 CPU tensor, got {t.dtype} on {t.device} (contiguous: {t.is_contiguous()})");
        }
        if (!probabilities.shape.SequenceEqual(gradProbabilities.shape))
            throw new ArgumentException($"probabilities [{string.Join(", ", probabilities.shape)}] and their gradient [{string.Join(", ", gradProbabilities.shape)}] differ in shape");
        int rowLength = (int)probabilities.shape[^1];
        long rows = probabilities.numel() / Math.Max(rowLength, 1);
        if (rows == 0 || rowLength == 0) return;
        fixed (byte* p = probabilities.bytes)
        fixed (byte* g = gradProbabilities.bytes)
            Rows((ushort*)p, (ushort*)g, rows, rowLength);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Load(ushort* p) => Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)), 16).AsSingle();

    /// <summary>float32 → bf16, rounding to nearest even (libtorch's conversion; NaN cannot arise from finite P, dP).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(ushort* p, Vector512<float> v)
    {
        var bits = v.AsUInt32();
        var odd = Avx512F.ShiftRightLogical(bits, 16) & Vector512.Create(1u);
        Avx512F.ConvertToVector256UInt16(Avx512F.ShiftRightLogical(bits + odd + Vector512.Create(0x7FFFu), 16)).Store(p);
    }

    static float ToFloat(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    static ushort ToBf16(float f)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(f);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    static void Rows(ushort* p, ushort* g, long rows, int m)
    {
        int vectorEnd = m & ~15;
        for (long r = 0; r < rows; r++)
        {
            ushort* pr = p + r * m, gr = g + r * m;
            var dot = Vector512<float>.Zero;
            int i = 0;
            for (; i < vectorEnd; i += 16) dot = Avx512F.FusedMultiplyAdd(Load(pr + i), Load(gr + i), dot);
            float rowDot = Vector512.Sum(dot);
            for (; i < m; i++) rowDot += ToFloat(pr[i]) * ToFloat(gr[i]);
            var d = Vector512.Create(rowDot);
            for (i = 0; i < vectorEnd; i += 16) Store(gr + i, Load(pr + i) * (Load(gr + i) - d));
            for (; i < m; i++) gr[i] = ToBf16(ToFloat(pr[i]) * (ToFloat(gr[i]) - rowDot));
        }
    }
}
