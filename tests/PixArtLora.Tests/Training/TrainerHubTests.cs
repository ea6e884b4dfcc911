using PixArtLora.Data.Samples;
using PixArtLora.Hub;
using PixArtLora.Registry;
using PixArtLora.Tests.Hub;
using PixArtLora.Training;
using static PixArtLora.Tests.Hub.FakeHubServer;

namespace PixArtLora.Tests.Training;

/// <summary>Model and dataset given as Hugging Face ids, served by a loopback Hub: downloaded into the HF cache, then trained on.</summary>
[Collection(TrainerCollection.Name)]
public class TrainerHubTests
{
    [Fact]
    public void Hub_ids_for_the_model_and_the_dataset_are_downloaded_and_trained_on()
    {
        using var server = new FakeHubServer();
        var model = server.Add(new FakeRepo { Id = "someone/pixart-tiny" });
        string tiny = TinyModels.EnsurePipeline(TrainerWorkspace.ModelsRoot);
        foreach (var file in Directory.GetFiles(tiny, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(tiny, file).Replace(Path.DirectorySeparatorChar, '/');
            model.Files[relative] = new FakeFile(File.ReadAllBytes(file), Lfs: file.EndsWith(".safetensors") || file.EndsWith(".model"));
        }
        model.Files["README.md"] = new FakeFile("# tiny"u8.ToArray(), Lfs: false);
        var dataset = server.Add(new FakeRepo { Id = "someone/shapes", Type = HubRepoType.Dataset });
        string parquet = ShapesDataset.Write(Path.Combine(TestPaths.NewTempDir("hub-shapes"), "train.parquet"), 8, 128);
        dataset.Files["data/train-00000-of-00001.parquet"] = new FakeFile(File.ReadAllBytes(parquet), Lfs: true);
        string cache = TestPaths.NewTempDir("hub-cache");

        var result = Trainer.Run(
            TrainerWorkspace.Settings("hub", s =>
            {
                s.Model = "someone/pixart-tiny"; s.Dataset = "someone/shapes"; s.MaxTokenLength = 32; s.MaxTrainSteps = 2;
                s.CacheDir = TestPaths.NewTempDir("hub-features");
            }),
            TrainerWorkspace.Options() with { Hub = new HubOptions { Endpoint = server.Endpoint, CacheDir = cache, RetryDelay = TimeSpan.FromMilliseconds(10) } });

        Assert.Equal(2, result.GlobalStep);
        Assert.True(File.Exists(result.Outputs.LoraFile));
        Assert.True(Directory.Exists(Path.Combine(cache, "models--someone--pixart-tiny", "snapshots", model.Commit, "transformer")));
        Assert.True(File.Exists(Path.Combine(cache, "datasets--someone--shapes", "snapshots", dataset.Commit, "data", "train-00000-of-00001.parquet")));
        Assert.DoesNotContain(server.Requests, r => r.Path.EndsWith("README.md"));
    }
}
