using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity;

public static class TensorAssert
{
    /// <summary>
    /// Elementwise |actual - expected| &lt;= atol + rtol * |expected|, in float64. On failure reports the
    /// worst element (index, both values), the max abs difference and how many elements failed.
    /// </summary>
    public static void AllClose(Tensor actual, Tensor expected, double atol, double rtol, string label)
    {
        if (!actual.shape.SequenceEqual(expected.shape))
            throw new XunitException($"{label}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]");
        using var scope = NewDisposeScope();
        var a = actual.detach().cpu().to(float64);
        var e = expected.detach().cpu().to(float64);
        var diff = (a - e).abs();
        var allowed = atol + rtol * e.abs();
        var excess = diff - allowed;
        var bad = excess.gt(0).logical_or(a.isnan().logical_xor(e.isnan()));
        long badCount = bad.sum().item<long>();
        if (badCount == 0) return;
        long worst = excess.nan_to_num(1e300).flatten().argmax().item<long>();
        var idx = Unravel(worst, expected.shape);
        double av = a.flatten()[worst].item<double>(), ev = e.flatten()[worst].item<double>();
        throw new XunitException(
            $"{label}: {badCount} of {expected.numel()} elements outside atol={atol} rtol={rtol}; worst at [{string.Join(", ", idx)}]: " +
            $"actual {av:G9}, expected {ev:G9} (|diff| {Math.Abs(av - ev):G4}); max |diff| {diff.max().item<double>():G4}");
    }

    /// <summary>Exact equality of two integer (or any) tensors, reporting the first differing element.</summary>
    public static void Equal(Tensor actual, Tensor expected, string label)
    {
        if (!actual.shape.SequenceEqual(expected.shape))
            throw new XunitException($"{label}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]");
        using var scope = NewDisposeScope();
        var ne = actual.cpu().to(float64).ne(expected.cpu().to(float64)).flatten();
        if (!ne.any().item<bool>()) return;
        long first = ne.nonzero()[0, 0].item<long>();
        throw new XunitException(
            $"{label}: {ne.sum().item<long>()} elements differ; first at [{string.Join(", ", Unravel(first, expected.shape))}]: " +
            $"actual {actual.flatten()[first].to(float64).item<double>()}, expected {expected.flatten()[first].to(float64).item<double>()}");
    }

    static long[] Unravel(long flat, long[] shape)
    {
        var idx = new long[shape.Length];
        for (int i = shape.Length - 1; i >= 0; i--) { idx[i] = flat % shape[i]; flat /= shape[i]; }
        return idx;
    }
}
