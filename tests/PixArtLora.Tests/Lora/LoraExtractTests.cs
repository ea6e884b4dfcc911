using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

public class LoraExtractTests
{
    const int TrueRank = 3;

    /// <summary>A base checkpoint and a "fine-tune" whose attention weights moved by a rank-3 delta and one bias moved too.</summary>
    static (string Base, string Tuned, Dictionary<string, Tensor> Deltas) Pair(string dir)
    {
        using var model = new TinyPixArtLikeModel(dim: 12, blocks: 1);
        string baseDir = LoraMergeTests.SaveCheckpoint(model, Path.Combine(dir, "base"));
        var deltas = new Dictionary<string, Tensor>();
        using var g = new Generator(21);
        using (no_grad())
        {
            foreach (var (name, p) in model.named_parameters())
            {
                if (!name.EndsWith(".weight") || !(name.Contains(".attn1.") || name.Contains(".attn2."))) continue;
                // Distinct singular values (1.0, 0.5, 0.25 times random directions) so truncation below the true rank loses a known share.
                var u = linalg.qr(randn(new long[] { p.shape[0], TrueRank }, generator: g)).Q;
                var v = linalg.qr(randn(new long[] { p.shape[1], TrueRank }, generator: g)).Q;
                var delta = u.matmul(diag(tensor(new float[] { 1.0f, 0.5f, 0.25f }))).matmul(v.t()).detach().clone();
                p.add_(delta);
                deltas[name[..^".weight".Length]] = delta.MoveToOuterDisposeScope();
            }
            model.named_parameters().First(p => p.name == "proj_out.bias").parameter.add_(0.125);
        }
        string tunedDir = LoraMergeTests.SaveCheckpoint(model, Path.Combine(dir, "tuned"));
        return (baseDir, tunedDir, deltas);
    }

    [Fact]
    public void Extract_then_merge_reproduces_a_low_rank_fine_tune_exactly_at_or_above_its_rank()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("extract-exact");
        var (baseDir, tunedDir, deltas) = Pair(dir);
        using var b = SafetensorsCheckpoint.Open(baseDir);
        using var t = SafetensorsCheckpoint.Open(tunedDir);

        foreach (int rank in new[] { TrueRank, 8 })
        {
            using var x = LoraExtract.Extract(b, t, rank, LoraTargets.Attention);
            Assert.Equal(deltas.Keys.Order(StringComparer.Ordinal), x.Weights.Modules.Keys);
            Assert.All(x.Modules, m => Assert.True(m.RetainedEnergy > 1 - 1e-6, $"{m.Module}: {m.RetainedEnergy}"));
            Assert.Contains(x.Unrepresented, u => u.StartsWith("proj_out.bias"));

            string file = Path.Combine(dir, $"x{rank}.safetensors");
            LoraFile.Write(file, x.Weights);
            string merged = Path.Combine(dir, $"merged{rank}");
            LoraMerge.MergeCheckpoint(baseDir, new[] { new LoraMergeSource(file) }, merged);
            using var m = SafetensorsCheckpoint.Open(merged);
            foreach (var name in deltas.Keys)
                TensorAssert.AllClose(m.Read(name + ".weight"), t.Read(name + ".weight"), 1e-5, 1e-5, $"rank {rank}: {name}");
        }
    }

    [Fact]
    public void Below_the_true_rank_the_error_is_the_dropped_singular_values()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("extract-trunc");
        var (baseDir, tunedDir, deltas) = Pair(dir);
        using var b = SafetensorsCheckpoint.Open(baseDir);
        using var t = SafetensorsCheckpoint.Open(tunedDir);

        double previousError = double.PositiveInfinity;
        foreach (int rank in new[] { 1, 2, 3 })
        {
            using var x = LoraExtract.Extract(b, t, rank, LoraTargets.Attention);
            // σ = 1, 0.5, 0.25: keeping k of them retains Σ_{i<k} σ_i² / Σ σ_i² (Eckart–Young).
            double[] s2 = { 1, 0.25, 0.0625 };
            double expectedEnergy = s2.Take(rank).Sum() / s2.Sum();
            double error = 0;
            foreach (var m in x.Modules)
            {
                Assert.Equal(rank, m.Rank);
                Assert.Equal(expectedEnergy, m.RetainedEnergy, 4);
                using var residual = deltas[m.Module] - x.Weights.Modules[m.Module].DeltaWeight();
                double r = residual.norm().item<float>();
                Assert.Equal(Math.Sqrt(s2.Skip(rank).Sum()), r, 4);
                error += r;
            }
            Assert.Equal(expectedEnergy, x.TotalRetainedEnergy, 4);
            Assert.True(error < previousError);
            previousError = error;
        }
    }

    [Fact]
    public void Identical_models_have_nothing_to_extract()
    {
        using var scope = NewDisposeScope();
        string dir = TestPaths.NewTempDir("extract-same");
        using var model = new TinyPixArtLikeModel();
        string baseDir = LoraMergeTests.SaveCheckpoint(model, Path.Combine(dir, "base"));
        using var b = SafetensorsCheckpoint.Open(baseDir);
        var e = Assert.Throws<LoraFormatException>(() => LoraExtract.Extract(b, b, 4));
        Assert.Contains("nothing to extract", e.Message);
    }
}
