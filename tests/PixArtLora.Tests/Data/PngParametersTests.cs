using System.Text;
using PixArtLora.Data.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Data;

public class PngParametersTests
{
    static GenerationParameters Full() => new()
    {
        Prompt = "a pokemon with blue wings, flying: over the sea",
        NegativePrompt = "blurry, low quality",
        Steps = 20,
        Sampler = "DPM++ 2M",
        CfgScale = 4.5,
        Seed = 1234567890123,
        Width = 512,
        Height = 768,
        Model = "PixArt-alpha/PixArt-XL-2-512x512",
        Loras = [new("pokemon", 0.8), new("style:v2", 1)],
        Extra = [new("Model hash", "abc123"), new("Version", "pixartlora 0.1")],
    };

    [Fact]
    public void InfotextHasTheA1111Layout()
    {
        var p = new GenerationParameters
        {
            Prompt = "a cat, sitting", NegativePrompt = "blurry", Steps = 20, Sampler = "DPM++ 2M", CfgScale = 4.5, Seed = 1,
            Width = 512, Height = 512, Model = "PixArt-Sigma-XL-2-512-MS", Loras = [new("pokemon", 0.8)],
        };
        Assert.Equal(
            "a cat, sitting\nNegative prompt: blurry\n" +
            "Steps: 20, Sampler: DPM++ 2M, CFG scale: 4.5, Seed: 1, Size: 512x512, Model: PixArt-Sigma-XL-2-512-MS, Lora: \"pokemon:0.8\"",
            p.ToInfotext());
    }

    [Fact]
    public void ParsesA1111Infotext()
    {
        const string text = "masterpiece, 1girl, (blue eyes:1.2)\nNegative prompt: lowres, bad anatomy\n" +
            "Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 2179987202, Size: 768x512, Model hash: 93b79e09ed, Model: anything-v4.5, Clip skip: 2";
        var p = GenerationParameters.Parse(text);
        Assert.Equal("masterpiece, 1girl, (blue eyes:1.2)", p.Prompt);
        Assert.Equal("lowres, bad anatomy", p.NegativePrompt);
        Assert.Equal((28, "Euler a", 7.0, 2179987202L, 768, 512, "anything-v4.5"), (p.Steps, p.Sampler, p.CfgScale, p.Seed, p.Width, p.Height, p.Model));
        Assert.Equal([new("Model hash", "93b79e09ed"), new("Clip skip", "2")], p.Extra);

        // Multi-line prompts; a text without a parameter line is all prompt.
        var multi = GenerationParameters.Parse("line one\nline two\nNegative prompt: neg one\nneg two\nSteps: 5, Seed: 3, Sampler: DDIM");
        Assert.Equal(("line one\nline two", "neg one\nneg two", 5), (multi.Prompt, multi.NegativePrompt, multi.Steps));
        Assert.Equal("just a prompt: nothing else", GenerationParameters.Parse("just a prompt: nothing else").Prompt);
    }

    [Fact]
    public void ParametersRoundTripThroughPng()
    {
        var dir = TestPaths.NewTempDir("png");
        using var img = TestImages.Pattern(16, 12);
        string path = Path.Combine(dir, "out.png");
        PngImageFile.Save(img, path, Full());
        Assert.Equal(Full(), PngImageFile.ReadParameters(path));

        // The chunk is a tEXt chunk named "parameters", as A1111 and PIL write it, readable by an independent decoder.
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(IndexOf(bytes, "tEXtparameters\0"u8.ToArray()) > 0, "no tEXt chunk named parameters");
        using var viaImageSharp = Image.Load<Rgb24>(bytes);
        var text = viaImageSharp.Metadata.GetPngMetadata().TextData.Single(t => t.Keyword == "parameters");
        Assert.Equal(Full().ToInfotext(), text.Value);
        Assert.Equal(img[5, 7], viaImageSharp[5, 7]);

        string plain = Path.Combine(dir, "plain.png");
        PngImageFile.Save(img, plain);
        Assert.Null(PngImageFile.ReadParameters(plain));
    }

    [Fact]
    public void NonLatinTextUsesItxt()
    {
        var p = Full() with { Prompt = "一只蓝色翅膀的宝可梦", NegativePrompt = "模糊" };
        using var img = TestImages.Pattern(8, 8);
        byte[] png = PngImageFile.Encode(img, p);
        Assert.True(IndexOf(png, "iTXtparameters\0"u8.ToArray()) > 0, "no iTXt chunk named parameters");
        string path = TestImages.Write(TestPaths.NewTempDir("png"), "zh.png", png);
        Assert.Equal(p, PngImageFile.ReadParameters(path));
        using var viaImageSharp = Image.Load<Rgb24>(png);
        Assert.Equal(p.ToInfotext(), viaImageSharp.Metadata.GetPngMetadata().TextData.Single(t => t.Keyword == "parameters").Value);
    }

    [Fact]
    public void ReadsCompressedTextWrittenByAnotherEncoder()
    {
        // ImageSharp compresses text above its threshold into zTXt: our reader must inflate it.
        string longPrompt = string.Join(", ", Enumerable.Range(0, 200).Select(i => $"detail {i}"));
        using var img = TestImages.Pattern(8, 8);
        img.Metadata.GetPngMetadata().TextData.Add(new PngTextData("parameters", longPrompt + "\nSteps: 9, Seed: 4, Sampler: Euler", "", ""));
        byte[] png = TestImages.Encode(img, new PngEncoder { TextCompressionThreshold = 100 });
        Assert.True(IndexOf(png, "zTXtparameters"u8.ToArray()) > 0 || IndexOf(png, "iTXtparameters"u8.ToArray()) > 0);
        var p = GenerationParameters.Parse(PngTextChunks.Read(png).Single(e => e.Keyword == "parameters").Text);
        Assert.Equal((longPrompt, 9, 4L), (p.Prompt, p.Steps, p.Seed));
    }

    [Fact]
    public void ChunkCrcIsTheStandardCrc32()
    {
        // Every PNG's IEND chunk carries CRC 0xAE426082.
        Assert.Equal(0xAE426082u, PngTextChunks.Crc32("IEND"u8));
        Assert.Equal(0xCBF43926u, PngTextChunks.Crc32("123456789"u8)); // the CRC-32 check value
    }

    [Fact]
    public void RefusesUnwritableValues()
    {
        Assert.Throws<ArgumentException>(() => (Full() with { Loras = [new("a, b", 1)] }).ToInfotext());
        Assert.Throws<ArgumentException>(() => (Full() with { Extra = [new("bad:key", "v")] }).ToInfotext());
    }

    static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);
}
