using System.Text.Json;

namespace PixArtLora.Tests.Registry;

/// <summary>`lora models`, run as a user runs it.</summary>
public class ModelsVerbTests
{
    [Fact]
    public void JsonListsEveryVariantWithItsParameterCountAndDefaults()
    {
        var r = LoraProcess.Run("models", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = JsonDocument.Parse(r.Stdout).RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("id").GetString()!);
        Assert.Equal(8, rows.Count);
        Assert.Equal(610_856_096, rows["sigma-1024-ms"].GetProperty("parameters").GetInt64());
        Assert.Equal(611_349_152, rows["alpha-1024-ms"].GetProperty("parameters").GetInt64());
        Assert.Equal(300, rows["sigma-2k-ms"].GetProperty("caption_tokens").GetInt32());
        Assert.Equal(120, rows["alpha-512"].GetProperty("caption_tokens").GetInt32());
        Assert.Equal(0.5, rows["sigma-256"].GetProperty("interpolation_scale").GetDouble());
        Assert.Equal("PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers/vae", rows["sigma-512-ms"].GetProperty("vae_source").GetString());
        Assert.Equal("dpm-solver", rows["tiny"].GetProperty("sampler").GetString());
        Assert.Equal(20, rows["tiny"].GetProperty("steps").GetInt32());
        Assert.Equal(4.5, rows["tiny"].GetProperty("guidance_scale").GetDouble());
    }

    [Fact]
    public void TableShowsIdsSizesAndTokenLengths()
    {
        var r = LoraProcess.Run("models");
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var id in new[] { "alpha-256", "alpha-512", "alpha-1024-ms", "sigma-256", "sigma-512-ms", "sigma-1024-ms", "sigma-2k-ms", "tiny" })
            Assert.Contains(id, r.Stdout);
        Assert.Contains("610,856,096", r.Stdout);
        Assert.Contains("611,349,152", r.Stdout);
        Assert.Contains("sdxl-vae (0.13025)", r.Stdout);
        Assert.Contains("sd-vae-ft-ema (0.18215)", r.Stdout);
        Assert.Contains("iddpm 100", r.Stdout);
        Assert.Contains("sa-solver 25", r.Stdout);
    }
}
