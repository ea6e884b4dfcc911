using PixArtLora.IO;
using PixArtLora.Models.Vae;
using PixArtLora.Tests.Parity;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Vae;

public class AutoencoderKLLoadTests
{
    /// <summary>A copy of the fixture VAE folder whose weights are <paramref name="edit"/>ed.</summary>
    static string CopyWithWeights(Action<Dictionary<string, Tensor>> edit)
    {
        var dir = TestPaths.NewTempDir("vae");
        File.Copy(Path.Combine(VaeTestModels.FixtureFolder, "config.json"), Path.Combine(dir, "config.json"));
        using var file = SafetensorsFile.Open(Path.Combine(VaeTestModels.FixtureFolder, "diffusion_pytorch_model.safetensors"));
        var tensors = file.Entries.Keys.ToDictionary(k => k, k => file.Read(k));
        edit(tensors);
        SafetensorsWriter.Save(Path.Combine(dir, "diffusion_pytorch_model.safetensors"), tensors);
        return dir;
    }

    [Fact]
    public void MissingUnexpectedAndMisshapenKeysAreNamed()
    {
        using var scope = NewDisposeScope();
        const string key = "decoder.mid_block.attentions.0.to_k.weight";
        var missing = CopyWithWeights(t => t.Remove(key));
        Assert.Contains(key, Assert.Throws<SafetensorsFormatException>(() => AutoencoderKL.Load(missing)).Message);

        var extra = CopyWithWeights(t => t["decoder.extra.weight"] = ones(2));
        Assert.Contains("decoder.extra.weight", Assert.Throws<SafetensorsFormatException>(() => AutoencoderKL.Load(extra)).Message);

        var misshapen = CopyWithWeights(t => t["quant_conv.weight"] = zeros(8, 8, 3, 3));
        var ex = Assert.Throws<SafetensorsFormatException>(() => AutoencoderKL.Load(misshapen));
        Assert.Contains("quant_conv.weight", ex.Message);
        Assert.Contains("[8, 8, 1, 1]", ex.Message);
    }

    [Fact]
    public void WeightsWithDiffusersOldAttentionNamesLoadToTheSameModel()
    {
        using var scope = NewDisposeScope();
        var renames = new Dictionary<string, string> { [".to_q."] = ".query.", [".to_k."] = ".key.", [".to_v."] = ".value.", [".to_out.0."] = ".proj_attn." };
        var old = CopyWithWeights(t =>
        {
            foreach (var key in t.Keys.Where(k => k.Contains(".attentions.")).ToList())
                foreach (var (now, was) in renames)
                    if (key.Contains(now)) { t[key.Replace(now, was)] = t[key]; t.Remove(key); }
        });
        using var current = AutoencoderKL.Load(VaeTestModels.FixtureFolder);
        using var legacy = AutoencoderKL.Load(old);
        var z = randn(1, 4, 2, 3);
        TensorAssert.Equal(legacy.Decode(z), current.Decode(z), "decode with renamed attention weights");
    }

    [Fact]
    public void AModelFolderWithAVaeSubfolderLoads()
    {
        using var vae = AutoencoderKL.Load(TestPaths.Fixture("parity", "pipeline-sigma"));
        Assert.Equal(0.13025, vae.Config.ScalingFactor);
    }

    [Fact]
    public void SaveThenLoadGivesTheSameWeights()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var vae = new AutoencoderKL(VaeTestModels.Small());
        var dir = TestPaths.NewTempDir("vae-save");
        vae.Save(dir);
        using var back = AutoencoderKL.Load(dir);
        var expected = vae.state_dict();
        foreach (var (k, v) in back.state_dict()) TensorAssert.Equal(v, expected[k], k);
        Assert.Equal(vae.ComputeIdentity(), back.ComputeIdentity());
    }

    [Fact]
    public void Float16IsRefusedWhenTheConfigForcesUpcast()
    {
        var ex = Assert.Throws<ArgumentException>(() => new AutoencoderKL(VaeTestModels.Small(), CPU, ScalarType.Float16));
        Assert.Contains("force_upcast", ex.Message);
        using var fp16Safe = new AutoencoderKL(VaeTestModels.Small() with { ForceUpcast = false }, CPU, ScalarType.Float16);
        Assert.Equal(ScalarType.Float16, fp16Safe.DType);
    }

    [Fact]
    public void BFloat16AgreesWithFloat32()
    {
        using var scope = NewDisposeScope();
        using var fp32 = AutoencoderKL.Load(VaeTestModels.FixtureFolder);
        using var bf16 = AutoencoderKL.Load(VaeTestModels.FixtureFolder, CPU, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, bf16.DType);
        manual_seed(5);
        var image = rand(1, 3, 32, 32) * 2 - 1;
        var a = fp32.Encode(image).Mean;
        var b = bf16.Encode(image).Mean;
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        // bf16 keeps 8 bits of mantissa: expect agreement to a few percent of the output's scale, not to float32 precision.
        double scale = a.abs().max().item<float>();
        double encErr = (b.to(float32) - a).abs().max().item<float>();
        Assert.True(encErr < 0.05 * scale, $"bf16 encode differs by {encErr:G3}, output scale {scale:G3}");
        var z = randn(1, 4, 4, 4);
        var da = fp32.Decode(z);
        var db = bf16.Decode(z).to(float32);
        double decErr = (db - da).abs().max().item<float>(), decScale = da.abs().max().item<float>();
        Assert.True(decErr < 0.05 * decScale, $"bf16 decode differs by {decErr:G3}, output scale {decScale:G3}");
    }

    [Fact]
    public void WrongInputShapesAreClearErrors()
    {
        using var scope = NewDisposeScope();
        using var vae = new AutoencoderKL(VaeTestModels.Small());
        Assert.Contains("[batch, 3, height, width]", Assert.Throws<ArgumentException>(() => vae.Encode(zeros(3, 16, 16))).Message);
        Assert.Contains("[batch, 4, height, width]", Assert.Throws<ArgumentException>(() => vae.Decode(zeros(1, 3, 4, 4))).Message);
    }
}
