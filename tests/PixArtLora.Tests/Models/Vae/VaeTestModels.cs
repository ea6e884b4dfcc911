using PixArtLora.Models.Vae;

namespace PixArtLora.Tests.Models.Vae;

/// <summary>Configs and folders the VAE tests share.</summary>
internal static class VaeTestModels
{
    /// <summary>The parity case's tiny SDXL-shaped VAE (config.json + safetensors, written by diffusers).</summary>
    public static string FixtureFolder => TestPaths.Fixture("parity", "vae", "vae");

    /// <summary>A two-block VAE (spatial factor 2) small enough to run on 100-pixel images in milliseconds.</summary>
    public static AutoencoderKLConfig Small(bool attention = true, int sampleSize = 64) => new()
    {
        BlockOutChannels = new[] { 8, 8 },
        DownBlockTypes = new[] { AutoencoderKLConfig.DownBlockType, AutoencoderKLConfig.DownBlockType },
        UpBlockTypes = new[] { AutoencoderKLConfig.UpBlockType, AutoencoderKLConfig.UpBlockType },
        NormNumGroups = 4,
        SampleSize = new[] { sampleSize },
        MidBlockAddAttention = attention,
    };

    /// <summary>The SDXL VAE's config as published (stabilityai/sdxl-vae, used by PixArt-Σ).</summary>
    public static AutoencoderKLConfig SdxlVae => new()
    {
        BlockOutChannels = new[] { 128, 256, 512, 512 },
        DownBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.DownBlockType, 4).ToArray(),
        UpBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.UpBlockType, 4).ToArray(),
        LayersPerBlock = 2,
        NormNumGroups = 32,
        SampleSize = new[] { 1024 },
        ScalingFactor = 0.13025,
    };
}
