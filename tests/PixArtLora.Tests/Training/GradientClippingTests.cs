using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

public class GradientClippingTests
{
    [Fact]
    public void ClipsByTheNormOfAllGradientsTogether()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(zeros(2));
        var b = new Parameter(zeros(1));
        var noGrad = new Parameter(zeros(3));
        a.grad = tensor(new float[] { 3, 4 });
        b.grad = tensor(new float[] { 12 });
        // sqrt(9 + 16 + 144) = 13; limit 6.5 scales by 6.5 / (13 + 1e-6)
        double norm = GradientClipping.ClipByGlobalNorm(new[] { a, b, noGrad }, 6.5);
        Assert.Equal(13.0, norm, 1e-5);
        double scale = 6.5 / (13 + 1e-6);
        TensorAssert.AllClose(a.grad!, tensor(new[] { 3 * scale, 4 * scale }), 1e-6, 0, "a.grad");
        TensorAssert.AllClose(b.grad!, tensor(new[] { 12 * scale }), 1e-6, 0, "b.grad");
        Assert.Null(noGrad.grad);
    }

    [Fact]
    public void LeavesGradientsBelowTheLimitUntouched()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(zeros(2));
        a.grad = tensor(new float[] { 0.3f, 0.4f });
        Assert.Equal(0.5, GradientClipping.ClipByGlobalNorm(new[] { a }, 1.0), 1e-6);
        TensorAssert.Equal(a.grad!, tensor(new float[] { 0.3f, 0.4f }), "unclipped");
        Assert.Equal(0.5, GradientClipping.ClipByGlobalNorm(new[] { a }, 0), 1e-6); // 0: measure only
    }

    [Fact]
    public void NonFiniteGradientNormStopsWithAClearMessage()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(zeros(2));
        a.grad = tensor(new[] { 1f, float.NaN });
        double norm = GradientClipping.ClipByGlobalNorm(new[] { a }, 1.0);
        Assert.True(double.IsNaN(norm));
        var e = Assert.Throws<NonFiniteLossException>(() =>
            TrainingGuards.EnsureFinite(norm, 7, "gradient norm", "/runs/x/checkpoint-5"));
        Assert.Contains("gradient norm became NaN at step 7", e.Message);
        Assert.Contains("checkpoint-5", e.Message);
        Assert.Equal(7, e.Step);
    }

    [Fact]
    public void LossGuardAcceptsFiniteAndRejectsInfinity()
    {
        TrainingGuards.EnsureFinite(0.123, 1);
        var e = Assert.Throws<NonFiniteLossException>(() => TrainingGuards.EnsureFinite(double.PositiveInfinity, 42));
        Assert.Contains("loss became ∞ at step 42", e.Message.Replace("Infinity", "∞"));
        Assert.Contains("No checkpoint was written yet", e.Message);
    }
}
