using System.IO.Compression;
using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Conversion;

/// <summary>The restricted .pth reader: what it rebuilds, and what it refuses.</summary>
public class PthFileTests
{
    static string NewPath(string name) => Path.Combine(TestPaths.NewTempDir("pth"), name);

    [Fact]
    public void ReadsHalfAndBFloat16StoragesAndStridedViewsWithOffsets()
    {
        // fp16 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800; bf16 1.0 = 0x3F80, 3.0 = 0x4040
        byte[] half = { 0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38 };
        byte[] bf16 = { 0x80, 0x3F, 0x40, 0x40 };
        float[] storage = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        string path = new TorchZipBuilder()
            .EmptyDict().Mark()
            .Str("h").Tensor("HalfStorage", "0", half, 3, 0, new long[] { 3 }, new long[] { 1 })
            .Str("b").Tensor("BFloat16Storage", "1", bf16, 2, 0, new long[] { 2 }, new long[] { 1 })
            // a transposed view starting at element 1: t[i, j] = storage[1 + i + 3 j]
            .Str("view").Tensor("FloatStorage", "2", TorchZipBuilder.Floats(storage), 12, 1, new long[] { 3, 2 }, new long[] { 1, 3 })
            .SetItems().Stop()
            .Save(NewPath("dtypes.pth"));

        using var pth = PthFile.Open(path);
        Assert.Null(pth.StateDictKey);
        Assert.Equal(new[] { "h", "b", "view" }, pth.Names);
        using var h = pth.Read("h");
        Assert.Equal(ScalarType.Float16, h.dtype);
        Assert.Equal(new[] { 1.0f, -2.0f, 0.5f }, h.to(float32).data<float>().ToArray());
        using var b = pth.Read("b");
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        Assert.Equal(new[] { 1.0f, 3.0f }, b.to(float32).data<float>().ToArray());
        using var v = pth.Read("view");
        Assert.Equal(new long[] { 3, 2 }, v.shape);
        var expected = new float[6];
        for (int i = 0; i < 3; i++) for (int j = 0; j < 2; j++) expected[i * 2 + j] = storage[1 + i + 3 * j];
        Assert.Equal(expected, v.data<float>().ToArray());
    }

    [Fact]
    public void SelectsTheRequestedStateDictOfATrainingCheckpoint()
    {
        string path = new TorchZipBuilder()
            .EmptyDict().Mark()
            .Str("state_dict").EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", TorchZipBuilder.Floats(1, 2), 2, 0, new long[] { 2 }, new long[] { 1 }).SetItems()
            .Str("state_dict_ema").EmptyDict().Mark().Str("w").Tensor("FloatStorage", "1", TorchZipBuilder.Floats(7, 8), 2, 0, new long[] { 2 }, new long[] { 1 }).SetItems()
            .Str("epoch").Int(12)
            .SetItems().Stop()
            .Save(NewPath("train.pth"));

        using (var main = PthFile.Open(path))
        {
            Assert.Equal("state_dict", main.StateDictKey);
            Assert.Equal(new[] { "state_dict", "state_dict_ema", "epoch" }, main.TopLevelKeys);
            Assert.Equal(new[] { 1f, 2f }, main.Read("w").data<float>().ToArray());
        }
        using (var ema = PthFile.Open(path, "state_dict_ema"))
            Assert.Equal(new[] { 7f, 8f }, ema.Read("w").data<float>().ToArray());

        var missing = Assert.Throws<PthFormatException>(() => PthFile.Open(path, "model"));
        Assert.Contains("no top-level key 'model'", missing.Message);
        Assert.Contains("state_dict_ema", missing.Message);
        var notTensors = Assert.Throws<PthFormatException>(() => PthFile.Open(path, "epoch"));
        Assert.Contains("'epoch' is a int", notTensors.Message);
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch.nn.modules.linear", "Linear")]
    public void RefusesAnyOtherGlobalByName(string module, string name)
    {
        string path = new TorchZipBuilder()
            .EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", TorchZipBuilder.Floats(1), 1, 0, new long[] { 1 }, new long[] { 1 })
            .Str("payload").Global(module, name).Mark().Str("echo owned").Tuple().Reduce()
            .SetItems().Stop()
            .Save(NewPath("hostile.pth"));

        var e = Assert.Throws<PthFormatException>(() => PthFile.Open(path));
        Assert.Contains($"'{module}.{name}'", e.Message);
        Assert.Contains(path, e.Message);
        Assert.Contains("safetensors", e.Message);
    }

    [Fact]
    public void RefusesObjectBuildingOpcodesAndUnknownStorageTypes()
    {
        // INST ('i'): builds an instance of module.name from the stack, as old pickles do.
        string inst = new TorchZipBuilder().Mark().Op("ios\nsystem\n"u8.ToArray()).Stop().Save(NewPath("inst.pth"));
        Assert.Contains("not allowed", Assert.Throws<PthFormatException>(() => PthFile.Open(inst)).Message);

        string complex = new TorchZipBuilder()
            .EmptyDict().Str("w").Tensor("ComplexFloatStorage", "0", new byte[8], 1, 0, new long[] { 1 }, new long[] { 1 }).SetItem().Stop()
            .Save(NewPath("complex.pth"));
        Assert.Contains("torch.ComplexFloatStorage", Assert.Throws<PthFormatException>(() => PthFile.Open(complex)).Message);
    }

    [Fact]
    public void ReportsLegacyFormatTruncatedStoragesAndViewsOutsideTheirStorage()
    {
        string legacy = NewPath("legacy.pth");
        File.WriteAllBytes(legacy, new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e });
        Assert.Contains("legacy torch.save format", Assert.Throws<PthFormatException>(() => PthFile.Open(legacy)).Message);

        string shortData = new TorchZipBuilder()
            .EmptyDict().Str("w").Tensor("FloatStorage", "0", TorchZipBuilder.Floats(1, 2), 4, 0, new long[] { 4 }, new long[] { 1 }).SetItem().Stop()
            .Save(NewPath("short.pth"));
        using (var pth = PthFile.Open(shortData))
            Assert.Contains("holds 8 bytes, storage '0' needs 16", Assert.Throws<PthFormatException>(() => pth.Read("w")).Message);

        string outside = new TorchZipBuilder()
            .EmptyDict().Str("w").Tensor("FloatStorage", "0", TorchZipBuilder.Floats(1, 2), 2, 1, new long[] { 2 }, new long[] { 1 }).SetItem().Stop()
            .Save(NewPath("outside.pth"));
        using (var pth = PthFile.Open(outside))
            Assert.Contains("reaches element 2 of storage '0', which holds 2", Assert.Throws<PthFormatException>(() => pth.Read("w")).Message);
    }

    [Fact]
    public void ReadsTheReferenceCheckpointWithItsArchiveFolderName()
    {
        string original = TestPaths.Fixture("parity", "pth-to-diffusers", "original.pth");
        using var zip = ZipFile.OpenRead(original);
        Assert.Contains(zip.Entries, e => e.FullName == "original/data.pkl");
        using var pth = PthFile.Open(original);
        Assert.Equal("state_dict", pth.StateDictKey);
        Assert.Equal(new long[] { 72, 24 }, pth.Tensors["blocks.0.attn.qkv.weight"].Shape);
        Assert.Equal(ScalarType.Float32, pth.Tensors["blocks.0.attn.qkv.weight"].Dtype);
    }
}
