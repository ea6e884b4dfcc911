using PixArtLora.Registry;
using PixArtLora.Tests.Inference;

namespace PixArtLora.Tests.Registry;

/// <summary>Model names → component locations, without touching the network.</summary>
public class ModelLocatorTests
{
    [Fact]
    public void SigmaReleasesTakeTheirComponentsFromTheSharedRepository()
    {
        var loc = ModelLocator.Locate("sigma-1024-ms");
        Assert.Equal(new HubComponent("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", "transformer"), loc.Transformer.Hub);
        Assert.Equal(new HubComponent(ModelRegistry.SigmaComponentsRepo, "text_encoder"), loc.TextEncoder!.Hub);
        Assert.Equal(new HubComponent(ModelRegistry.SigmaComponentsRepo, "vae"), loc.Vae!.Hub);
        Assert.Equal(300, loc.Variant!.CaptionTokens);

        var alpha = ModelLocator.Locate("PixArt-alpha/PixArt-XL-2-1024-MS");
        Assert.Equal("alpha-1024-ms", alpha.Variant!.Id);
        Assert.Equal(new HubComponent("PixArt-alpha/PixArt-XL-2-1024-MS", "vae"), alpha.Vae!.Hub);
    }

    [Fact]
    public void TinyIsLocalAndHubIdsArePipelineRepositories()
    {
        var tiny = ModelLocator.Locate("tiny", tinyModelsRoot: InferenceFixtures.ModelsRoot);
        Assert.All(new[] { tiny.Transformer, tiny.TextEncoder, tiny.Tokenizer, tiny.Vae, tiny.Scheduler }, c => Assert.NotNull(c!.LocalFolder));

        var hub = ModelLocator.Locate("someone/pixart-finetune");
        Assert.Null(hub.Variant);
        Assert.Equal(new HubComponent("someone/pixart-finetune", "tokenizer"), hub.Tokenizer!.Hub);

        var mixed = ModelLocator.Locate("someone/pixart-finetune", componentsFrom: "sigma-512-ms");
        Assert.Equal("someone/pixart-finetune", mixed.Transformer.Hub!.Repo);
        Assert.Equal(ModelRegistry.SigmaComponentsRepo, mixed.Vae!.Hub!.Repo);
        Assert.Equal("sigma-512-ms", mixed.Variant!.Id);
    }

    [Fact]
    public void APipelineFolderFallsBackToTheRegistryForComponentsItLacks()
    {
        // The parity fixture lists text_encoder and tokenizer as [null, null] and matches no registry architecture.
        var loc = ModelLocator.Locate(TestPaths.Fixture("parity", "pipeline-sigma"));
        Assert.NotNull(loc.Vae!.LocalFolder);
        Assert.Null(loc.TextEncoder);
        var e = Assert.Throws<InvalidOperationException>(() => loc.Require(PipelineComponent.TextEncoder));
        Assert.Contains("components_from", e.Message);

        // A bare transformer folder of a released architecture borrows that release's components.
        var dir = TestPaths.NewTempDir("bare");
        ModelRegistry.Get("sigma-1024-ms").TransformerConfig.Save(Path.Combine(dir, "config.json"));
        var bare = ModelLocator.Locate(dir);
        Assert.Equal("sigma-1024-ms", bare.Variant!.Id);
        Assert.Equal(dir, bare.Transformer.LocalFolder);
        Assert.Equal(new HubComponent(ModelRegistry.SigmaComponentsRepo, "vae"), bare.Vae!.Hub);
    }

    [Fact]
    public void UnknownNamesAreExplained()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelLocator.Locate("not a model"));
        Assert.Contains("sigma-1024-ms", e.Message);
        Assert.Throws<FileNotFoundException>(() => ModelLocator.Locate(TestPaths.NewTempDir("empty")));
    }
}
