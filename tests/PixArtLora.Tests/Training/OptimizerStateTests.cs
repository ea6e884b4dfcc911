using PixArtLora.Tests.Parity;
using PixArtLora.Training.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

public class OptimizerStateTests
{
    [Fact]
    public void AdamWStepMatchesTheDecoupledWeightDecayRuleComputedByHand()
    {
        using var scope = NewDisposeScope();
        double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
        double[] p0 = { 1.0, -2.0, 0.5 };
        double[][] grads = { new[] { 0.5, -1.0, 2.0 }, new[] { -0.25, 0.75, 1.0 } };
        var p = new Parameter(tensor(p0).to(float32));
        using var adamw = new AdamWOptimizer(new[] { ("p", p) }, new AdamWSettings(lr, b1, b2, eps, wd));
        foreach (var g in grads)
        {
            p.grad = tensor(g).to(float32);
            adamw.Step();
        }

        var expected = (double[])p0.Clone();
        var m = new double[3]; var v = new double[3];
        for (int t = 1; t <= grads.Length; t++)
            for (int k = 0; k < 3; k++)
            {
                double g = grads[t - 1][k];
                expected[k] *= 1 - lr * wd;
                m[k] = b1 * m[k] + (1 - b1) * g;
                v[k] = b2 * v[k] + (1 - b2) * g * g;
                double mHat = m[k] / (1 - Math.Pow(b1, t)), vHat = v[k] / (1 - Math.Pow(b2, t));
                expected[k] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        TensorAssert.AllClose(p, tensor(expected), 1e-6, 1e-5, "AdamW after 2 steps");
        Assert.Equal(2, adamw.ExportState().Steps["p"]);
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("came")]
    public void SavedStateResumesBitExactly(string kind)
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("optstate");
        var gradients = Enumerable.Range(0, 6).Select(i => (randn(3, 5).DetachFromDisposeScope(), randn(5).DetachFromDisposeScope())).ToList();

        // Run A: six steps without interruption.
        var (wa, ba) = (new Parameter(ones(3, 5)), new Parameter(zeros(5)));
        using var a = OptimizerFactory.Create(kind, new[] { ("w", wa), ("b", ba) }, 0.05, weightDecay: 0.01);
        // Run B: three steps, state saved; then a fresh optimizer over weights copied at that point, state loaded, three more.
        var (wb, bb) = (new Parameter(ones(3, 5)), new Parameter(zeros(5)));
        using var b = OptimizerFactory.Create(kind, new[] { ("w", wb), ("b", bb) }, 0.05, weightDecay: 0.01);
        for (int i = 0; i < 3; i++) { Apply(a, wa, ba, gradients[i]); Apply(b, wb, bb, gradients[i]); }
        OptimizerStateFile.Save(dir, b);

        var wc = new Parameter(wb.detach().clone());
        var bc = new Parameter(bb.detach().clone());
        using var c = OptimizerFactory.Create(kind, new[] { ("b", bc), ("w", wc) }, 0.05, weightDecay: 0.01); // other order: names key the state
        OptimizerStateFile.Load(dir, c);
        for (int i = 3; i < 6; i++) { Apply(a, wa, ba, gradients[i]); Apply(c, wc, bc, gradients[i]); }

        TensorAssert.Equal(wc, wa, $"{kind} resumed weight");
        TensorAssert.Equal(bc, ba, $"{kind} resumed bias");
        var sa = a.ExportState();
        var sc = c.ExportState();
        Assert.Equal(sa.Steps.OrderBy(k => k.Key), sc.Steps.OrderBy(k => k.Key));
        foreach (var (key, t) in sa.Tensors) TensorAssert.Equal(sc.Tensors[key], t, $"{kind} state {key}");
    }

    [Fact]
    public void LoadingStateOfAnotherOptimizerOrModelFailsClearly()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("optstate");
        var w = new Parameter(ones(2, 2));
        using (var came = new CameOptimizer(new[] { ("w", w) }, new CameSettings()))
            OptimizerStateFile.Save(dir, came);

        using var adamw = new AdamWOptimizer(new[] { ("w", new Parameter(ones(2, 2))) }, new AdamWSettings());
        var kind = Assert.Throws<InvalidDataException>(() => OptimizerStateFile.Load(dir, adamw));
        Assert.Contains("'came'", kind.Message);
        Assert.Contains("'adamw'", kind.Message);

        using var renamed = new CameOptimizer(new[] { ("v", new Parameter(ones(2, 2))) }, new CameSettings());
        var missing = Assert.Throws<InvalidDataException>(() => OptimizerStateFile.Load(dir, renamed));
        Assert.Contains("'v'", missing.Message);

        using var reshaped = new CameOptimizer(new[] { ("w", new Parameter(ones(2, 3))) }, new CameSettings());
        var shape = Assert.Throws<InvalidDataException>(() => OptimizerStateFile.Load(dir, reshaped));
        Assert.Contains("w.exp_avg", shape.Message);
        Assert.Contains("[2, 3]", shape.Message);
    }

    [Fact]
    public void UnknownOptimizerNameListsTheValidOnes()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            OptimizerFactory.Create("sgd", new[] { ("w", new Parameter(ones(1))) }, 1e-3));
        Assert.Contains("'sgd'", e.Message);
        Assert.Contains("adamw, came", e.Message);
    }

    static void Apply(ITrainingOptimizer opt, Parameter w, Parameter b, (Tensor W, Tensor B) g)
    {
        w.grad = g.W.clone();
        b.grad = g.B.clone();
        opt.Step();
        opt.ZeroGrad();
    }
}
