using PixArtLora.Models.Vae;
using static TorchSharp.torch;

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

    /// <summary>
    /// A model whose weights depend only on <paramref name="seed"/>: conv and linear weights and biases uniform in
    /// ±1/√fan_in (nn.Conv2d's default range), norms at one and zero. Tests run in parallel and share torch's global
    /// generator, so manual_seed before a constructor does not make its weights reproducible.
    /// </summary>
    public static AutoencoderKL Seeded(AutoencoderKLConfig config, ulong seed, ScalarType? dtype = null)
    {
        var vae = new AutoencoderKL(config, CPU, dtype);
        var generator = new Generator(seed);
        var parameters = vae.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string owner = name[..name.LastIndexOf('.')];
            if (!parameters.TryGetValue(owner + ".weight", out var weight) || weight.dim() < 2) continue; // a norm
            double bound = 1 / Math.Sqrt(weight.numel() / weight.shape[0]);
            p.uniform_(-bound, bound, generator);
        }
        return vae;
    }

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
