using System.Text.Json;
using PixArtLora.Benchmarks;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Benchmarks;

/// <summary>Tiny runs of the benchmark: the report has its fields and they agree with each other. No speed is asserted.</summary>
public class BenchmarkRunTests
{
    static readonly string[] RequiredFields =
    {
        "variant", "resolution", "dtype", "mode", "seconds_per_step_median", "seconds_per_step_min", "model_flops_per_step",
        "gemm_flops_per_s", "mfu", "peak_rss_bytes", "images_per_s", "device",
    };

    [Fact]
    public void LoraRunReportsEveryFieldConsistently()
    {
        var options = new TransformerBenchOptions
        {
            Variant = ModelRegistry.Get("tiny"), Resolution = 64, Mode = BenchMode.Lora, GradientCheckpointing = true,
            Steps = 2, Warmup = 0, LoraRank = 4, GemmSize = 64,
        };
        var result = TransformerBenchmark.Run(options);
        var json = JsonDocument.Parse(result.ToJson()).RootElement;
        foreach (var field in RequiredFields) Assert.True(json.TryGetProperty(field, out _), $"missing field {field}");

        Assert.Equal("tiny", json.GetProperty("variant").GetString());
        Assert.Equal(64, json.GetProperty("resolution").GetInt32());
        Assert.Equal("fp32", json.GetProperty("dtype").GetString());
        Assert.Equal("lora", json.GetProperty("mode").GetString());
        Assert.Equal(2, json.GetProperty("seconds_per_step").GetArrayLength());
        Assert.True(result.SecondsPerStepMin > 0 && result.SecondsPerStepMin <= result.SecondsPerStepMedian);
        // 64 px → 8×8 latent → 16 tokens; the count is the analytic one for this shape.
        Assert.Equal(16, result.ImageTokens);
        Assert.Equal(TransformerFlops.Count(options.Variant.TransformerConfig, 1, 8, 8, 32, BenchMode.Lora, true, 4).Total,
            json.GetProperty("model_flops_per_step").GetDouble());
        Assert.Equal(result.ModelFlopsPerStep / result.SecondsPerStepMedian / result.GemmFlopsPerSecond, result.Mfu, 1e-9);
        // One probe after each timed step; the step-matched MFU is the median of the two per-step ratios.
        Assert.Equal(2, json.GetProperty("gemm_flops_per_s_after_steps").GetArrayLength());
        Assert.All(result.GemmFlopsPerSecondAfterSteps, f => Assert.True(f > 0));
        var perStep = result.SecondsPerStep.Select((s, i) => result.ModelFlopsPerStep / s / result.GemmFlopsPerSecondAfterSteps[i]).ToList();
        Assert.Equal((perStep[0] + perStep[1]) / 2, result.MfuStepMatched, 1e-9);
        // Rank-4 adapters on q, k, v, out of both attentions of 2 blocks of width 32 (captions 32-d): 16 × 4·(32+32).
        Assert.Equal(16 * 4 * 64, result.TrainableParameters);
        Assert.Equal(result.TrainableParameters, result.AdapterParameters);
        Assert.True(result.PeakRssBytes > result.WeightBytes);
        // Device memory is a CUDA figure: on a CPU run the keys are there, with no value.
        foreach (var field in new[] { "cuda_used_before_model_bytes", "cuda_peak_used_bytes", "cuda_total_bytes" })
            Assert.Equal(JsonValueKind.Null, json.GetProperty(field).ValueKind);
    }

    [Fact]
    public void LoraModeAttachesTheLibraryAdaptersTheFlopCountCharges()
    {
        // A bf16 base with fp32 adapters, as the trainer's --mixed_precision bf16 sets it up.
        using var scope = NewDisposeScope();
        var config = ModelRegistry.Get("tiny").TransformerConfig;
        using var model = RandomPipeline.RandomTransformer(config, CPU, ScalarType.BFloat16, seed: 3);
        const int rank = 4;
        using var network = TransformerBenchmark.AttachAdapters(model, rank, CPU);

        // Exactly q, k, v, out of both attentions of every block: the layers TransformerFlops charges adapter products to.
        var expected = Enumerable.Range(0, config.NumLayers)
            .SelectMany(b => new[] { "attn1", "attn2" }.SelectMany(a => TransformerFlops.AdapterTargets.Select(t => $"transformer_blocks.{b}.{a}.{t}")))
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, network.Layers.Keys.ToList());
        Assert.All(network.TrainableParameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(model.parameters().Where(p => !p.requires_grad), p => Assert.Equal(ScalarType.BFloat16, p.dtype));

        // The adapter products TransformerFlops adds in LoRA mode are 2·tokens·r·(in + out) per adapted layer, with
        // image tokens everywhere except the cross-attention k/v (caption tokens).
        const long latent = 8, captionTokens = 6;
        long imageTokens = (latent / config.PatchSize) * (latent / config.PatchSize);
        double adapterFlops = network.Layers.Sum(kv =>
        {
            long tokens = kv.Key.Contains("attn2.to_k") || kv.Key.Contains("attn2.to_v") ? captionTokens : imageTokens;
            return 2.0 * tokens * rank * (kv.Value.InFeatures + kv.Value.OutFeatures);
        });
        var lora = TransformerFlops.Count(config, 1, latent, latent, captionTokens, BenchMode.Lora, loraRank: rank);
        var forward = TransformerFlops.Count(config, 1, latent, latent, captionTokens, BenchMode.Forward);
        Assert.Equal(adapterFlops, lora.Forward - forward.Forward);
        // and the adapters' own weight gradients are all the weight gradients of LoRA mode.
        Assert.Equal(adapterFlops, lora.WeightGradients);

        // Only the adapters train: after a backward, gradients sit on lora_B (A's is B-weighted, zero while B is zero).
        using var inputs = BenchInputs.Create(config, 1, latent, latent, captionTokens, CPU, seed: 5);
        model.train();
        inputs.Run(model).to(ScalarType.Float32).square().mean().backward();
        var withGrad = model.named_parameters().Where(p => p.parameter.grad is not null).Select(p => p.name).ToList();
        Assert.NotEmpty(withGrad);
        Assert.All(withGrad, name => Assert.Contains(".lora_", name));
        Assert.True(network.Layers.Values.All(l => l.Factors(TransformerBenchmark.AdapterName).B.weight.grad!.abs().sum().item<float>() > 0));
    }

    [Fact]
    public void TimingMedianIsTheMiddleValue()
    {
        Assert.Equal(2.0, TimingStats.MedianOf(new[] { 3.0, 1.0, 2.0 }));
        Assert.Equal(2.5, TimingStats.MedianOf(new[] { 4.0, 1.0, 2.0, 3.0 }));
        Assert.Throws<ArgumentException>(() => TimingStats.MedianOf(Array.Empty<double>()));
    }

    [Fact]
    public void CliWritesTheStepJson()
    {
        string dir = TestPaths.NewTempDir("bench");
        string file = Path.Combine(dir, "forward.json");
        var r = LoraProcess.Run("bench", "--variant", "tiny", "--resolution", "64", "--dtype", "bf16", "--mode", "forward",
            "--steps", "2", "--warmup", "1", "--batch_size", "2", "--gemm_size", "64", "--json", file);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("MFU", r.Stdout);
        var json = JsonDocument.Parse(File.ReadAllText(file)).RootElement;
        foreach (var field in RequiredFields) Assert.True(json.TryGetProperty(field, out _), $"missing field {field}");
        Assert.Equal("bf16", json.GetProperty("dtype").GetString());
        Assert.Equal("forward", json.GetProperty("mode").GetString());
        Assert.Equal(2, json.GetProperty("batch_size").GetInt32());
        Assert.Equal(2.0 / json.GetProperty("seconds_per_step_median").GetDouble(), json.GetProperty("images_per_s").GetDouble(), 1e-9);
    }

    [Fact]
    public void CliRejectsBadOptionsNamingThem()
    {
        var r = LoraProcess.Run("bench", "--variant", "tiny", "--resolution", "70");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--resolution 70", r.Stderr);
        r = LoraProcess.Run("bench", "--variant", "tiny", "--mode", "sideways");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--mode 'sideways'", r.Stderr);
        r = LoraProcess.Run("bench", "--variant", "tiny", "--mode", "forward", "--gradient_checkpointing");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--gradient_checkpointing", r.Stderr);
    }

    [Fact]
    public void CliMakesCheckpointsAndMeasuresLoadingThem()
    {
        string dir = TestPaths.NewTempDir("bench-load");
        string file = Path.Combine(dir, "load.json");
        var r = LoraProcess.Run("bench", "--variant", "tiny", "--make_checkpoint", dir, "--steps", "1", "--json", file);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var results = JsonDocument.Parse(File.ReadAllText(file)).RootElement.EnumerateArray().ToList();
        Assert.Equal(new[] { "F32", "BF16" }, results.Select(x => x.GetProperty("stored_dtype").GetString()));
        foreach (var result in results)
        {
            Assert.True(result.GetProperty("raw_read_seconds_median").GetDouble() > 0);
            var loads = result.GetProperty("loads").EnumerateArray().ToList();
            Assert.Equal(new[] { "fp32", "bf16" }, loads.Select(l => l.GetProperty("dtype").GetString()));
            foreach (var l in loads)
            {
                Assert.True(l.GetProperty("seconds_median").GetDouble() > 0);
                Assert.True(l.GetProperty("peak_rss_bytes").GetInt64() > 0);
            }
        }
        // The written checkpoints are real diffusers folders: they load into the model.
        using var model = PixArtTransformer2DModel.FromPretrained(Path.Combine(dir, "transformer-bf16"), dtype: ScalarType.BFloat16);
        Assert.Equal(ModelRegistry.Get("tiny").TransformerConfig.NumLayers, model.transformer_blocks.Count);
    }
}
