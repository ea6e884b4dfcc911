using PixArtLora.Data.Images;
using static PixArtLora.Tests.Inference.InferenceFixtures;

namespace PixArtLora.Tests.Inference;

/// <summary><c>lora infer</c> end to end on the offline tiny model, through the built executable.</summary>
public class InferCliTests
{
    static readonly string[] Fast = { "--model_id", "tiny", "--num_inference_steps", "3", "--seed", "11" };

    static readonly string[] SmallSize = { "--image_width", "64", "--image_height", "64", "--use_resolution_binning", "false" };

    static LoraProcess.Result Infer(params string[] args) => RunLora(new[] { "infer" }.Concat(Fast).Concat(args).ToArray());

    /// <summary>As <see cref="Infer"/> at 64×64 (a fraction of the time), for tests not about the size.</summary>
    static LoraProcess.Result InferSmall(params string[] args) => Infer(SmallSize.Concat(args).ToArray());

    static void AssertSucceeded(LoraProcess.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    [Fact]
    public void WritesPngWithParametersAndIsByteIdenticalForTheSameSeed()
    {
        var dir = TestPaths.NewTempDir("infer");
        string a = Path.Combine(dir, "a.png"), b = Path.Combine(dir, "b.png");
        var first = Infer("--prompt", "A Red Fox", "--negative_prompt", "blurry", "--output_path", a);
        AssertSucceeded(first);
        // libtorch's "Could not initialize NNPACK" warning, logged from the VAE's convolutions on CPUs without NNPACK support.
        Assert.DoesNotContain("NNPACK", first.Stderr);
        AssertSucceeded(Infer("--prompt", "A Red Fox", "--negative_prompt", "blurry", "--output_path", b));
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));

        using (var image = LoadPng(a)) Assert.Equal((256, 256), (image.Width, image.Height));
        var p = PngImageFile.ReadParameters(a)!;
        Assert.Equal("A Red Fox", p.Prompt);
        Assert.Equal("blurry", p.NegativePrompt);
        Assert.Equal(3, p.Steps);
        Assert.Equal(11, p.Seed);
        Assert.Equal(4.5, p.CfgScale);
        Assert.Equal("DPM++ 2M", p.Sampler);
        Assert.Equal("tiny", p.Model);

        string other = Path.Combine(dir, "other-seed.png");
        AssertSucceeded(RunLora("infer", "--model_id", "tiny", "--num_inference_steps", "3", "--seed", "12", "--prompt", "A Red Fox",
            "--negative_prompt", "blurry", "--output_path", other));
        Assert.NotEqual(0, MaxPixelDifference(a, other));
    }

    [Fact]
    public void LoraChangesTheImageAndScaleZeroEqualsNoLora()
    {
        var dir = TestPaths.NewTempDir("infer-lora");
        string lora = WriteLora(Path.Combine(dir, "style.safetensors"));
        string plain = Path.Combine(dir, "plain.png"), adapted = Path.Combine(dir, "adapted.png"), off = Path.Combine(dir, "off.png");
        string viaSuffix = Path.Combine(dir, "suffix-off.png");
        AssertSucceeded(InferSmall("--prompt", "a dragon", "--output_path", plain));
        AssertSucceeded(InferSmall("--prompt", "a dragon", "--lora_path", lora, "--output_path", adapted));
        AssertSucceeded(InferSmall("--prompt", "a dragon", "--lora_path", lora, "--lora_scale", "0", "--output_path", off));
        AssertSucceeded(InferSmall("--prompt", "a dragon", "--lora_path", lora + ":0", "--output_path", viaSuffix));

        Assert.True(MaxPixelDifference(plain, adapted) > 8, "the LoRA should visibly change the image");
        Assert.Equal(0, MaxPixelDifference(plain, off));
        Assert.Equal(0, MaxPixelDifference(plain, viaSuffix));
        var p = PngImageFile.ReadParameters(adapted)!;
        Assert.Equal("style", Assert.Single(p.Loras).Name);
        Assert.Equal(1.0, p.Loras[0].Scale);
    }

    [Fact]
    public void MergedCheckpointMatchesBasePlusAdapter()
    {
        var dir = TestPaths.NewTempDir("infer-merge");
        string lora = WriteLora(Path.Combine(dir, "style.safetensors"));
        string merged = Path.Combine(dir, "merged");
        var merge = RunLora("merge", "--base", TinyFolder, "--lora", lora + ":0.8", "--output", merged);
        AssertSucceeded(merge);

        string adapted = Path.Combine(dir, "adapted.png"), fromMerged = Path.Combine(dir, "merged.png"), plain = Path.Combine(dir, "plain.png");
        AssertSucceeded(InferSmall("--prompt", "a castle", "--lora_path", lora + ":0.8", "--output_path", adapted));
        AssertSucceeded(InferSmall("--prompt", "a castle", "--checkpoint", merged, "--output_path", fromMerged));
        AssertSucceeded(InferSmall("--prompt", "a castle", "--output_path", plain));
        int mergeError = MaxPixelDifference(adapted, fromMerged), loraEffect = MaxPixelDifference(adapted, plain);
        Assert.True(mergeError <= 2, $"merged vs base+adapter differ by {mergeError} levels");
        Assert.True(loraEffect > 4 * Math.Max(1, mergeError), $"the LoRA's effect ({loraEffect}) should dwarf the merge error ({mergeError})");
    }

    [Fact]
    public void BinningGeneratesAtTheTableBinAndReturnsTheRequestedSize()
    {
        var dir = TestPaths.NewTempDir("infer-bin");
        string path = Path.Combine(dir, "wide.png");
        var r = Infer("--prompt", "a road", "--image_width", "1000", "--image_height", "600", "--output_path", path);
        AssertSucceeded(r);
        using (var image = LoadPng(path)) Assert.Equal((1000, 600), (image.Width, image.Height));
        // diffusers' ASPECT_RATIO_256_BIN["0.6"] = [192, 320] (height, width): 600/1000 = 0.6.
        var p = PngImageFile.ReadParameters(path)!;
        Assert.Equal((1000, 600), (p.Width, p.Height));
        Assert.Contains(p.Extra, kv => kv.Key == "Generated size" && kv.Value == "320x192");
        Assert.Contains("generated at 320x192", r.Stderr + r.Stdout);
    }

    [Fact]
    public void BatchWritesEveryImageAndAContactSheetFromYamlConfig()
    {
        var dir = TestPaths.NewTempDir("infer-batch");
        string prompts = Path.Combine(dir, "prompts.txt");
        File.WriteAllText(prompts, "a cat\n\n  \na dog\n");
        string config = Path.Combine(dir, "infer.yaml");
        File.WriteAllText(config, $"model_id: tiny\nnum_inference_steps: 2\nbatch_size: 2\nimage_width: 128\nimage_height: 128\nuse_resolution_binning: false\nseed: 5\n");
        string output = Path.Combine(dir, "out");
        AssertSucceeded(RunLora("infer", "-c", config, "--prompt_path", prompts, "--output_path", output));

        var files = Directory.GetFiles(output, "*.png").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { "0000-5.png", "0001-6.png", "0002-7.png", "0003-8.png", "grid.png" }, files);
        using (var sheet = LoadPng(Path.Combine(output, "grid.png"))) Assert.Equal((256, 256), (sheet.Width, sheet.Height));
        Assert.Equal("a dog", PngImageFile.ReadParameters(Path.Combine(output, "0002-7.png"))!.Prompt);
        Assert.Equal(8, PngImageFile.ReadParameters(Path.Combine(output, "0003-8.png"))!.Seed);
        Assert.Empty(Directory.GetFiles(output, "*.tmp", SearchOption.AllDirectories));
    }

    public static IEnumerable<object[]> BadInputs()
    {
        yield return new object[] { "missing-lora", new[] { "--lora_path", "{dir}/nope.safetensors" }, "LoRA file not found" };
        yield return new object[] { "other-base", new[] { "--lora_path", "{wide-lora}" }, "wide.safetensors" };
        yield return new object[] { "empty-prompts", new[] { "--prompt_path", "{empty}" }, "holds no prompts" };
        yield return new object[] { "width", new[] { "--use_resolution_binning", "false", "--image_width", "100" }, "multiples of 16" };
        yield return new object[] { "sampler", new[] { "--sampler", "magic" }, "unknown sampler" };
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputFailsClearlyAndWritesNothing(string label, string[] extra, string message)
    {
        var dir = TestPaths.NewTempDir("infer-bad-" + label);
        string empty = Path.Combine(dir, "empty.txt");
        File.WriteAllText(empty, "\n   \n");
        string wideLora = "";
        if (label == "other-base") wideLora = WriteLora(Path.Combine(dir, "wide.safetensors"), WriteWideTransformer(Path.Combine(dir, "wide")));
        var args = extra.Select(a => a.Replace("{dir}", dir).Replace("{empty}", empty).Replace("{wide-lora}", wideLora)).ToList();
        if (label != "empty-prompts") args.AddRange(new[] { "--prompt", "a tree" });
        string output = Path.Combine(dir, "out.png");
        args.AddRange(new[] { "--output_path", output });

        var r = label == "width" ? Infer(args.ToArray()) : InferSmall(args.ToArray());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("error:", r.Stderr);
        Assert.Contains(message, r.Stderr);
        Assert.False(File.Exists(output), "no output file may be left behind");
        Assert.Empty(Directory.GetFiles(dir, "*.png*", SearchOption.AllDirectories));
    }
}
