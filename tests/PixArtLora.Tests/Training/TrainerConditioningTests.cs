using PixArtLora.Data.Buckets;
using PixArtLora.Models.Transformer;
using PixArtLora.Registry;
using PixArtLora.Tests.Parity;
using PixArtLora.Training;
using PixArtLora.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

/// <summary>What reaches the transformer: α micro-conditions, and the same gradients with gradient checkpointing.</summary>
[Collection(TrainerCollection.Name)]
public class TrainerConditioningTests
{
    [Fact]
    public void Micro_conditions_of_cached_batches_are_those_the_image_loader_gives()
    {
        foreach (bool multiScale in new[] { true, false })
        {
            var settings = TrainerWorkspace.Settings("micro", s => { s.MultiScale = multiScale; s.Resolution = 256; });
            var data = TrainingDataset.Open(settings, () => throw new InvalidOperationException("offline"), null, TrainerWorkspace.SamplesRoot);
            foreach (var sampled in data.Sampler.Epoch(0).Take(2))
            {
                using var scope = NewDisposeScope();
                using var loaded = data.Loader.Load(sampled)!;
                var (resolution, ratio) = TrainingDataFeed.MicroConditions(data.Buckets.Mode, data.Loader.Plan(sampled), sampled.Bucket);
                TensorAssert.Equal(resolution, loaded.OriginalSizes, $"resolution (multi-scale {multiScale})");
                TensorAssert.Equal(ratio, loaded.AspectRatios, $"aspect ratio (multi-scale {multiScale})");
            }
        }
    }

    [Fact]
    public void An_alpha_ms_style_model_trains_on_its_micro_conditions()
    {
        // The tiny pipeline with a transformer that uses resolution and aspect-ratio embeddings, as PixArt-α 1024-MS does.
        string folder = TestPaths.NewTempDir("alpha-ms-tiny");
        string tiny = TinyModels.EnsurePipeline(TrainerWorkspace.ModelsRoot);
        foreach (var file in Directory.GetFiles(tiny, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(folder, Path.GetRelativePath(tiny, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        // Width 48 (2 heads of 24): the size embeddings take a third of it each.
        var config = TinyModels.Variant.TransformerConfig with { UseAdditionalConditions = true, AttentionHeadDim = 24, CrossAttentionDim = 48 };
        manual_seed(3);
        using (var model = new PixArtTransformer2DModel(config)) model.SavePretrained(Path.Combine(folder, "transformer"));
        using var initial = PixArtTransformer2DModel.FromPretrained(folder);

        var changed = new Dictionary<string, double>();
        var result = Trainer.Run(TrainerWorkspace.Settings("alpha-ms", s =>
            {
                s.Model = folder; s.MaxTokenLength = 32; s.Mode = "full"; s.MultiScale = true; s.Resolution = 256; s.MaxTrainSteps = 2;
                s.MaxTrainSamples = 4;
            }),
            TrainerWorkspace.Options() with
            {
                OnTrained = (model, _) =>
                {
                    var before = initial.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                    foreach (var (name, p) in model.Model.named_parameters().Where(p => p.name.Contains("resolution_embedder") || p.name.Contains("aspect_ratio_embedder")))
                        changed[name] = (p - before[name]).abs().max().item<float>();
                },
            });
        Assert.Equal(2, result.GlobalStep);
        Assert.NotEmpty(changed);
        Assert.All(changed, kv => Assert.True(kv.Value > 0, $"{kv.Key} received no update: the micro-conditions did not reach the model"));
    }

    [Fact]
    public void Gradient_checkpointing_changes_memory_not_results()
    {
        var plain = Trainer.Run(TrainerWorkspace.Settings("no-gc", s => s.MaxTrainSteps = 3), TrainerWorkspace.Options());
        var checkpointed = Trainer.Run(TrainerWorkspace.Settings("gc", s => { s.MaxTrainSteps = 3; s.GradientCheckpointing = true; }), TrainerWorkspace.Options());
        Assert.Equal(plain.Losses.Count, checkpointed.Losses.Count);
        for (int i = 0; i < plain.Losses.Count; i++) Assert.Equal(plain.Losses[i], checkpointed.Losses[i], 5);
        using var a = PixArtLora.IO.SafetensorsFile.Open(plain.Outputs.LoraFile!);
        using var b = PixArtLora.IO.SafetensorsFile.Open(checkpointed.Outputs.LoraFile!);
        foreach (var key in a.Entries.Keys)
        {
            using var x = a.Read(key);
            using var y = b.Read(key);
            TensorAssert.AllClose(y, x, 1e-6, 1e-4, key);
        }
    }

    [Fact]
    public void No_cache_encodes_on_the_fly_the_same_features_the_cache_holds()
    {
        var cached = Trainer.Run(TrainerWorkspace.Settings("cached", s => s.MaxTrainSteps = 3), TrainerWorkspace.Options());
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        string unused = TestPaths.NewTempDir("unused-cache");
        var live = Trainer.Run(TrainerWorkspace.Settings("live", s => { s.MaxTrainSteps = 3; s.NoCache = true; s.CacheDir = unused; }),
            TrainerWorkspace.Options(lines));
        Assert.Contains(lines, l => l.StartsWith("--no_cache"));
        Assert.Empty(Directory.GetFileSystemEntries(unused));
        // T5 runs over each batch's longest caption instead of the cache's batches of 8: equal up to float rounding.
        for (int i = 0; i < 3; i++) Assert.Equal(cached.Losses[i], live.Losses[i], 4);
    }

    [Fact]
    public void Min_snr_weighting_and_noise_offset_reach_the_loss()
    {
        var plain = Trainer.Run(TrainerWorkspace.Settings("plain", s => s.MaxTrainSteps = 1), TrainerWorkspace.Options());
        var snr = Trainer.Run(TrainerWorkspace.Settings("snr", s => { s.MaxTrainSteps = 1; s.SnrGamma = 5; }), TrainerWorkspace.Options());
        var offset = Trainer.Run(TrainerWorkspace.Settings("offset", s => { s.MaxTrainSteps = 1; s.NoiseOffset = 0.1; }), TrainerWorkspace.Options());
        // Min-SNR weights are min(SNR, γ) / SNR ≤ 1 for ε-prediction: the same draws give a smaller loss.
        Assert.True(snr.Losses[0] < plain.Losses[0], $"Min-SNR loss {snr.Losses[0]} should be below the plain loss {plain.Losses[0]}");
        Assert.NotEqual(plain.Losses[0], offset.Losses[0]);
    }
}
