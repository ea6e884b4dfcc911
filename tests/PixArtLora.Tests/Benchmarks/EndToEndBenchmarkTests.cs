using System.Text.Json;
using PixArtLora.Benchmarks;
using PixArtLora.Inference;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using PixArtLora.Tests.Inference;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Benchmarks;

/// <summary>The end-to-end benchmark on tiny models (random in memory, and the tiny pipeline folder through the CLI).</summary>
public class EndToEndBenchmarkTests
{
    static readonly string[] DocumentedFields =
    {
        "variant", "model", "resolution", "dtype", "text_encoder_dtype", "infer_steps", "seconds_per_image_median", "seconds_per_image_min",
        "seconds_per_image_with_text_encoder_median", "seconds_per_image_with_text_encoder_min", "text_encoder_seconds_median",
        "transformer_seconds_per_sampler_step_median", "vae_decode_seconds_median", "peak_rss_bytes", "load_average_1m_start",
        "load_average_1m_end", "timestamp", "device",
    };

    [Fact]
    public void RandomTinyPipelineGeneratesImagesOfTheAskedSize()
    {
        var tiny = ModelRegistry.Get("tiny");
        using var pipeline = RandomPipeline.Build(tiny, ScalarType.Float32, ScalarType.Float32, CPU, seed: 1);
        Assert.Equal(tiny.TransformerConfig, pipeline.TransformerConfig);
        Assert.Equal(tiny.CaptionTokens, pipeline.MaxSequenceLength);

        var generator = new PipelineGenerator(pipeline, resolution: 96, steps: 3);
        Assert.True(generator.Sampling.UsesGuidance);   // the registry's guidance 4.5: two rows per transformer call
        using var encoded = (PromptEmbeddings)generator.EncodePrompt();
        // Prompt and empty negative prompt, padded to the variant's length; the real tokenizer splits the prompt into many tokens.
        Assert.Equal(new long[] { 2, tiny.CaptionTokens, 32 }, encoded.Embeddings.shape);
        Assert.InRange(encoded.Mask[0].sum().item<long>(), 10, tiny.CaptionTokens);
        Assert.Equal(1, encoded.Mask[1].sum().item<long>());   // "" is just </s>
        Assert.True(encoded.Embeddings.isfinite().all().item<bool>());

        var phases = generator.Generate(encoded);
        Assert.Equal((96L, 96L), (phases.ImageHeight, phases.ImageWidth));
        Assert.Equal(3, phases.SamplerSteps);
        Assert.True(phases.DenoiseSeconds > 0 && phases.DecodeSeconds > 0);
        Assert.True(pipeline.TextEncoderLoaded);   // kept for the next encode, which the benchmark times
    }

    [Fact]
    public void GeneratorRejectsASizeThePipelineCannotMake()
    {
        using var pipeline = RandomPipeline.Build(ModelRegistry.Get("tiny"), ScalarType.Float32, ScalarType.Float32, CPU);
        var e = Assert.Throws<ArgumentException>(() => new PipelineGenerator(pipeline, resolution: 100));
        Assert.Contains("--resolution 100", e.Message);
        Assert.Contains("16", e.Message);
    }

    [Fact]
    public void FullSizeComponentsHaveThePublishedParameterCounts()
    {
        // Built on the meta device: shapes only. T5 v1.1 XXL's encoder has 4 762 310 656 parameters (transformers'
        // T5EncoderModel.num_parameters()), the KL-f8 VAE of SD and SDXL 83 653 863.
        using (var t5 = T5EncoderModel.Create(RandomPipeline.TextEncoderConfigFor(ModelRegistry.Get("sigma-512-ms")), META))
            Assert.Equal(4_762_310_656L, t5.parameters().Sum(p => p.numel()));
        foreach (var id in new[] { "sigma-1024-ms", "alpha-512" })
        {
            var variant = ModelRegistry.Get(id);
            var config = RandomPipeline.VaeConfigFor(variant);
            Assert.Equal(variant.Vae.ScalingFactor, config.ScalingFactor);
            Assert.Equal(8, config.SpatialScaleFactor);
            using var vae = new AutoencoderKL(config, META);
            Assert.Equal(83_653_863L, vae.parameters().Sum(p => p.numel()));
        }
    }

    [Fact]
    public void RandomWeightsHaveATrainedNetworksScale()
    {
        using var t5 = RandomPipeline.RandomTextEncoder(TinyModels.TextEncoderConfig, CPU, ScalarType.Float32, seed: 2);
        foreach (var (name, p) in t5.named_parameters())
        {
            if (p.dim() >= 2)
            {
                double expected = 1 / Math.Sqrt(p.numel() / (double)p.shape[0]);
                Assert.InRange(p.std().item<float>(), 0.9 * expected, 1.1 * expected);
            }
            else if (name.Contains("norm")) TensorAssert.Equal(p, ones_like(p), name);
        }
        // Same seed, same weights (the benchmark is repeatable); another seed, others.
        using var again = RandomPipeline.RandomTextEncoder(TinyModels.TextEncoderConfig, CPU, ScalarType.Float32, seed: 2);
        using var other = RandomPipeline.RandomTextEncoder(TinyModels.TextEncoderConfig, CPU, ScalarType.Float32, seed: 3);
        TensorAssert.Equal(again.SharedWeight, t5.SharedWeight, "shared.weight");
        Assert.False(other.SharedWeight.eq(t5.SharedWeight).all().item<bool>());
    }

    [Fact]
    public void RunReportsTheDocumentedFieldsWithConsistentTimings()
    {
        var options = new EndToEndBenchOptions
        {
            Variant = ModelRegistry.Get("tiny"), Resolution = 64, InferSteps = 2, Steps = 2, Warmup = 0,
            Dtype = ScalarType.Float32, TextEncoderDtype = ScalarType.Float32,
        };
        var result = EndToEndRun.Run(options);
        var json = JsonDocument.Parse(result.ToJson()).RootElement;
        foreach (var field in DocumentedFields) Assert.True(json.TryGetProperty(field, out _), $"missing field {field}");
        Assert.Equal("tiny", json.GetProperty("variant").GetString());
        Assert.True(json.GetProperty("random_weights").GetBoolean());
        Assert.Equal(64, json.GetProperty("resolution").GetInt32());
        Assert.Equal(2, json.GetProperty("infer_steps").GetInt32());
        Assert.Equal(2, json.GetProperty("transformer_batch").GetInt32());
        Assert.Equal(2, json.GetProperty("seconds_per_image").GetArrayLength());
        Assert.Equal(2, json.GetProperty("seconds_per_image_with_text_encoder").GetArrayLength());
        foreach (var field in new[] { "seconds_per_image_min", "seconds_per_image_with_text_encoder_min", "text_encoder_seconds_median",
                     "transformer_seconds_per_sampler_step_median", "transformer_seconds_per_sampler_step_with_text_encoder_median",
                     "vae_decode_seconds_median", "setup_seconds" })
            Assert.True(json.GetProperty(field).GetDouble() > 0, $"{field} is not positive");
        Assert.True(result.SecondsPerImageMin <= result.SecondsPerImageMedian);
        // The phases are parts of each timed image: sampling (steps × per-step) and the decode fit inside the slowest one.
        double slowest = result.SecondsPerImage.Max();
        Assert.True(result.TransformerSecondsPerSamplerStepMedian * result.InferSteps + result.VaeDecodeSecondsMedian <= slowest * 1.05 + 1e-3,
            $"phases {result.TransformerSecondsPerSamplerStepMedian} × {result.InferSteps} + {result.VaeDecodeSecondsMedian} exceed the image time {slowest}");
        Assert.True(result.PeakRssBytes > 0);
    }

    [Fact]
    public void CliMeasuresTheTinyModelFolderEndToEnd()
    {
        string file = Path.Combine(TestPaths.NewTempDir("bench-e2e"), "e2e.json");
        var r = InferenceFixtures.RunLora("bench", "--end_to_end", "--model_id", "tiny", "--dtype", "bf16", "--resolution", "64",
            "--infer_steps", "2", "--steps", "1", "--warmup", "0", "--json", file);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("s/image with T5", r.Stdout);
        var json = JsonDocument.Parse(File.ReadAllText(file)).RootElement;
        foreach (var field in DocumentedFields) Assert.True(json.TryGetProperty(field, out _), $"missing field {field}");
        Assert.Equal("tiny", json.GetProperty("model").GetString());
        Assert.False(json.GetProperty("random_weights").GetBoolean());
        Assert.Equal("bf16", json.GetProperty("dtype").GetString());
        Assert.Equal(64, json.GetProperty("resolution").GetInt32());
        Assert.True(json.GetProperty("seconds_per_image_median").GetDouble() > 0);
        Assert.True(json.GetProperty("seconds_per_image_with_text_encoder_median").GetDouble() > 0);
    }

    [Fact]
    public void CliRejectsModelIdWithoutEndToEnd()
    {
        var r = InferenceFixtures.RunLora("bench", "--variant", "tiny", "--model_id", "tiny");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--model_id", r.Stderr);
    }
}
