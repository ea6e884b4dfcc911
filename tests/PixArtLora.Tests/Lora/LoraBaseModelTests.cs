using PixArtLora.Lora;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

/// <summary>Finding the base transformer: folders, registry variants, and an adapter's recorded base model.</summary>
public class LoraBaseModelTests
{
    static readonly string CaseBase = TestPaths.Fixture("parity", "lora-sigma");

    [Fact]
    public void A_registry_variant_is_fetched_through_the_given_function()
    {
        HubComponent? asked = null;
        string folder = TransformerFolder.Resolve("PixArt-Sigma-XL-2-1024-MS", c => { asked = c; return CaseBase; });
        Assert.Equal(new HubComponent("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", "transformer"), asked);
        Assert.Equal(Path.Combine(CaseBase, "transformer"), folder);
    }

    [Fact]
    public void Unavailable_or_unknown_bases_say_what_to_do()
    {
        var notLocal = Assert.Throws<DirectoryNotFoundException>(() => TransformerFolder.Resolve("sigma-1024-ms"));
        Assert.Contains("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS/transformer", notLocal.Message);
        Assert.Contains("download", notLocal.Message);

        var unknown = Assert.Throws<DirectoryNotFoundException>(() => TransformerFolder.Resolve("no-such-model"));
        Assert.Contains("alpha-1024-ms", unknown.Message);

        var tiny = Assert.Throws<ArgumentException>(() => TransformerFolder.Resolve("tiny"));
        Assert.Contains("no published weights", tiny.Message);

        var empty = Assert.Throws<FileNotFoundException>(() => TransformerFolder.Resolve(TestPaths.NewTempDir("empty-base")));
        Assert.Contains("transformer/ subfolder", empty.Message);
    }

    [Fact]
    public void A_folder_is_identified_as_the_registry_variant_with_its_architecture()
    {
        string sigma = TestPaths.NewTempDir("sigma-config");
        ModelRegistry.Get("sigma-1024-ms").TransformerConfig.Save(Path.Combine(sigma, "config.json"));
        Assert.Equal("sigma-1024-ms", TransformerFolder.Identify(sigma)?.Id);
        Assert.StartsWith("PixArt-Sigma-XL-2-1024-MS (sigma-1024-ms)", TransformerFolder.Describe(sigma));

        string alpha = TestPaths.NewTempDir("alpha-config");
        ModelRegistry.Get("alpha-1024-ms").TransformerConfig.Save(Path.Combine(alpha, "config.json"));
        Assert.Equal("alpha-1024-ms", TransformerFolder.Identify(alpha)?.Id);

        // α-512 and Σ-512-MS have the same architecture: not guessed.
        string ambiguous = TestPaths.NewTempDir("512-config");
        ModelRegistry.Get("sigma-512-ms").TransformerConfig.Save(Path.Combine(ambiguous, "config.json"));
        Assert.Null(TransformerFolder.Identify(ambiguous));

        Assert.Null(TransformerFolder.Identify(Path.Combine(CaseBase, "transformer")));
        Assert.Contains("2 blocks, width 16", TransformerFolder.Describe(Path.Combine(CaseBase, "transformer")));
    }

    [Fact]
    public void An_adapter_recorded_for_another_variant_gets_a_warning()
    {
        using var scope = NewDisposeScope();
        LoraWeights Adapter(string? baseModel) => new(
            new Dictionary<string, LoraModule> { ["proj_out"] = new(randn(1, 4), randn(4, 1), 1) },
            baseModel == null ? null : new Dictionary<string, string> { [LoraFile.MetadataBaseModel] = baseModel }, "style.safetensors");
        var sigma = ModelRegistry.Get("sigma-1024-ms");

        using (var a = Adapter("PixArt-alpha/PixArt-XL-2-1024-MS"))
        {
            var warning = TransformerFolder.BaseModelMismatch(a, sigma);
            Assert.NotNull(warning);
            Assert.Contains("trained on PixArt-XL-2-1024-MS (alpha-1024-ms)", warning);
            Assert.Contains("PixArt-Sigma-XL-2-1024-MS (sigma-1024-ms)", warning);
        }
        using (var a = Adapter("sigma-1024-ms")) Assert.Null(TransformerFolder.BaseModelMismatch(a, sigma));
        using (var a = Adapter("/home/me/my-finetune")) Assert.Null(TransformerFolder.BaseModelMismatch(a, sigma));
        using (var a = Adapter(null)) Assert.Null(TransformerFolder.BaseModelMismatch(a, sigma));
    }
}
