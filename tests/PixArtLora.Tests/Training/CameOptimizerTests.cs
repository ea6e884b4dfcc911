using PixArtLora.Tests.Parity;
using PixArtLora.Training.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

public class CameOptimizerTests
{
    const double Lr = 0.01, Wd = 0.1;
    static readonly CameSettings Settings = new(LearningRate: Lr, WeightDecay: Wd);

    // Starting weights and two steps of gradients, chosen by hand: mixed signs and magnitudes so that the
    // update clipping (RMS > 1) and the row/column factoring both matter.
    static readonly double[,] W0 = { { 0.5, -1.0, 0.25, 2.0 }, { 1.5, 0.75, -0.5, -2.0 }, { 0.1, 0.2, 0.3, -0.4 } };
    static readonly double[][,] WGrads =
    {
        new double[,] { { 0.1, -0.2, 0.3, 0.05 }, { -1.0, 0.5, 0.25, 2.0 }, { 0.01, -0.02, 0.4, 0.8 } },
        new double[,] { { -0.3, 0.1, 0.2, 0.6 }, { 0.7, -0.4, 0.05, 1.5 }, { 0.2, 0.3, -0.1, -0.9 } },
    };
    static readonly double[] B0 = { 0.3, -0.6, 1.2, 0.0 };
    static readonly double[][] BGrads = { new[] { 0.5, -0.25, 2.0, 0.01 }, new[] { -0.4, 0.3, 1.0, 0.2 } };

    [Fact]
    public void TwoStepsMatchThePublishedUpdateRuleComputedByHand()
    {
        using var scope = NewDisposeScope();
        var w = new Parameter(tensor(W0).to(float32));
        var b = new Parameter(tensor(B0).to(float32));
        using var came = new CameOptimizer(new[] { ("w", w), ("b", b) }, Settings);
        for (int step = 0; step < 2; step++)
        {
            SetGradient(w, tensor(WGrads[step]).to(float32));
            SetGradient(b, tensor(BGrads[step]).to(float32));
            came.Step();
            came.ZeroGrad();
        }
        TensorAssert.AllClose(w, tensor(ReferenceMatrix(W0, WGrads)), 1e-6, 1e-5, "factored 3x4 weight after 2 steps");
        TensorAssert.AllClose(b, tensor(ReferenceVector(B0, BGrads)), 1e-6, 1e-5, "1-D bias after 2 steps");
    }

    [Fact]
    public void MatricesKeepOnlyRowAndColumnStatistics()
    {
        using var scope = NewDisposeScope();
        var w = new Parameter(zeros(5, 7));
        var b = new Parameter(zeros(7));
        using var came = new CameOptimizer(new[] { ("w", w), ("b", b) }, Settings);
        var state = came.ExportState();
        Assert.Equal(new long[] { 5 }, state.Tensors["w.exp_avg_sq_row"].shape);
        Assert.Equal(new long[] { 7 }, state.Tensors["w.exp_avg_sq_col"].shape);
        Assert.Equal(new long[] { 5 }, state.Tensors["w.exp_avg_res_row"].shape);
        Assert.Equal(new long[] { 7 }, state.Tensors["w.exp_avg_res_col"].shape);
        Assert.False(state.Tensors.ContainsKey("w.exp_avg_sq"));
        Assert.Equal(new long[] { 7 }, state.Tensors["b.exp_avg_sq"].shape);
    }

    [Fact]
    public void ParameterWithoutGradientIsLeftAlone()
    {
        using var scope = NewDisposeScope();
        var w = new Parameter(ones(2, 3));
        var frozenThisStep = new Parameter(ones(3));
        using var came = new CameOptimizer(new[] { ("w", w), ("other", frozenThisStep) }, Settings);
        SetGradient(w, ones(2, 3));
        came.Step();
        TensorAssert.Equal(frozenThisStep, ones(3), "no gradient, no update (not even weight decay)");
        Assert.Equal(0, came.ExportState().Steps["other"]);
        Assert.Equal(1, came.ExportState().Steps["w"]);
    }

    static void SetGradient(Parameter p, Tensor g)
    {
        // (p * g).sum() has gradient g with respect to p: the gradient arrives through autograd as in training.
        using var loss = (p * g).sum();
        loss.backward();
    }

    // ---- The CAME rule (Luo et al. 2023, Algorithm 1 / came_pytorch), in double precision, element by element.

    static double[,] ReferenceMatrix(double[,] w0, double[][,] grads)
    {
        var s = Settings;
        int rows = w0.GetLength(0), cols = w0.GetLength(1);
        var w = (double[,])w0.Clone();
        var r = new double[rows]; var c = new double[cols];
        var rr = new double[rows]; var rc = new double[cols];
        var m = new double[rows, cols];
        foreach (var g in grads)
        {
            for (int i = 0; i < rows; i++)
            {
                double mean = 0; for (int j = 0; j < cols; j++) mean += g[i, j] * g[i, j] + s.Epsilon1;
                r[i] = s.Beta2 * r[i] + (1 - s.Beta2) * mean / cols;
            }
            for (int j = 0; j < cols; j++)
            {
                double mean = 0; for (int i = 0; i < rows; i++) mean += g[i, j] * g[i, j] + s.Epsilon1;
                c[j] = s.Beta2 * c[j] + (1 - s.Beta2) * mean / rows;
            }
            double rMean = r.Average();
            var u = new double[rows, cols];
            double sumSq = 0;
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    u[i, j] = g[i, j] / Math.Sqrt(r[i] / rMean * c[j]);
                    sumSq += u[i, j] * u[i, j];
                }
            double clip = Math.Max(1.0, Math.Sqrt(sumSq / (rows * cols)) / s.ClipThreshold);
            var res = new double[rows, cols];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    u[i, j] /= clip;
                    m[i, j] = s.Beta1 * m[i, j] + (1 - s.Beta1) * u[i, j];
                    res[i, j] = (u[i, j] - m[i, j]) * (u[i, j] - m[i, j]) + s.Epsilon2;
                }
            for (int i = 0; i < rows; i++)
            {
                double mean = 0; for (int j = 0; j < cols; j++) mean += res[i, j];
                rr[i] = s.Beta3 * rr[i] + (1 - s.Beta3) * mean / cols;
            }
            for (int j = 0; j < cols; j++)
            {
                double mean = 0; for (int i = 0; i < rows; i++) mean += res[i, j];
                rc[j] = s.Beta3 * rc[j] + (1 - s.Beta3) * mean / rows;
            }
            double rrMean = rr.Average();
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    double confidenceScaled = m[i, j] / Math.Sqrt(rr[i] / rrMean * rc[j]);
                    w[i, j] = w[i, j] - s.WeightDecay * Lr * w[i, j] - Lr * confidenceScaled;
                }
        }
        return w;
    }

    static double[] ReferenceVector(double[] b0, double[][] grads)
    {
        var s = Settings;
        int n = b0.Length;
        var b = (double[])b0.Clone();
        var v = new double[n]; var m = new double[n];
        foreach (var g in grads)
        {
            var u = new double[n];
            double sumSq = 0;
            for (int k = 0; k < n; k++)
            {
                v[k] = s.Beta2 * v[k] + (1 - s.Beta2) * (g[k] * g[k] + s.Epsilon1);
                u[k] = g[k] / Math.Sqrt(v[k]);
                sumSq += u[k] * u[k];
            }
            double clip = Math.Max(1.0, Math.Sqrt(sumSq / n) / s.ClipThreshold);
            for (int k = 0; k < n; k++)
            {
                m[k] = s.Beta1 * m[k] + (1 - s.Beta1) * u[k] / clip;
                // Vectors have no confidence factoring: the step is the momentum itself.
                b[k] = b[k] - s.WeightDecay * Lr * b[k] - Lr * m[k];
            }
        }
        return b;
    }
}
