using System.Buffers.Binary;
using System.Text;
using PixArtLora.IO;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.IO;

public class SafetensorsTests
{
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int16)]
    [InlineData(ScalarType.Int8)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Bool)]
    public void RoundTripsEveryDtype(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("st");
        var source = (randn(3, 5) * 50).to(dtype);
        var scalar = tensor(7.0).to(dtype);
        var empty = zeros(0, 4).to(dtype);
        string path = Path.Combine(dir, "x.safetensors");
        SafetensorsWriter.Save(path, new Dictionary<string, Tensor> { ["a.b"] = source, ["s"] = scalar, ["e"] = empty },
            new Dictionary<string, string> { ["format"] = "pt" });

        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(0, (8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes)) % 8);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(SafetensorsDtype.NameOf(dtype), f.Get("a.b").Dtype);
        TensorAssert.Equal(f.Read("a.b"), source, "a.b");
        TensorAssert.Equal(f.Read("s"), scalar, "s");
        Assert.Equal(new long[] { 0, 4 }, f.Read("e").shape);
    }

    [Fact]
    public void ReadIntoConvertsDtypeAndFillsInPlace()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("st");
        var src = randn(4, 6).to(bfloat16);
        string path = Path.Combine(dir, "w.safetensors");
        SafetensorsWriter.Save(path, new Dictionary<string, Tensor> { ["w"] = src });
        using var f = SafetensorsFile.Open(path);
        var target = zeros(4, 6);
        f.ReadInto("w", target);
        TensorAssert.Equal(target, src.to(float32), "converted");
        var same = zeros(4, 6, bfloat16);
        f.ReadInto("w", same);
        TensorAssert.Equal(same, src, "in place");
        var ex = Assert.Throws<SafetensorsFormatException>(() => f.ReadInto("w", zeros(6, 4)));
        Assert.Contains("w: shape [4, 6]", ex.Message);
        Assert.Contains("expected [6, 4]", ex.Message);
    }

    [Fact]
    public void ShardedCheckpointLoadsThroughItsIndex()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("st");
        var tensors = Enumerable.Range(0, 5).Select(i => TensorSource.Of($"layer.{i}.weight", randn(32, 32))).ToList();
        var files = SafetensorsWriter.SaveSharded(dir, "model", tensors, maxShardBytes: 32 * 32 * 4 * 2);
        Assert.Contains(files, f => f.EndsWith("model.safetensors.index.json"));
        Assert.Equal(3, Directory.GetFiles(dir, "model-*-of-00003.safetensors").Length);
        using var ckpt = SafetensorsCheckpoint.Open(dir);
        Assert.Equal(5, ckpt.Keys.Count);
        foreach (var t in tensors) TensorAssert.Equal(ckpt.Read(t.Name), t.Produce(), t.Name);
    }

    [Fact]
    public void IndexNamingAMissingShardIsAClearError()
    {
        var dir = TestPaths.NewTempDir("st");
        var tensors = Enumerable.Range(0, 3).Select(i => TensorSource.Of($"l{i}", ones(16))).ToList();
        SafetensorsWriter.SaveSharded(dir, "model", tensors, maxShardBytes: 64);
        File.Delete(Path.Combine(dir, "model-00002-of-00003.safetensors"));
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(dir));
        Assert.Contains("model-00002-of-00003.safetensors", ex.Message);
        Assert.Contains("l1", ex.Message);
    }

    [Fact]
    public void StrictLoadNamesMissingUnexpectedAndMismatchedKeys()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("st");
        var module = nn.Sequential(("fc", nn.Linear(4, 3)));
        string path = Path.Combine(dir, "m.safetensors");
        SafetensorsWriter.Save(path, new Dictionary<string, Tensor> { ["fc.weight"] = randn(3, 4), ["extra"] = ones(1) });
        using (var ck = SafetensorsCheckpoint.Open(path))
        {
            var ex = Assert.Throws<SafetensorsFormatException>(() => ck.LoadInto(module));
            Assert.Contains("fc.bias", ex.Message);
            Assert.Contains("extra", ex.Message);
        }
        SafetensorsWriter.Save(path, new Dictionary<string, Tensor> { ["fc.weight"] = randn(4, 4), ["fc.bias"] = ones(3) });
        using (var ck = SafetensorsCheckpoint.Open(path))
        {
            var ex = Assert.Throws<SafetensorsFormatException>(() => ck.LoadInto(module));
            Assert.Contains("fc.weight: shape [4, 4]", ex.Message);
            Assert.Contains("expected [3, 4]", ex.Message);
        }
        var w = randn(3, 4);
        SafetensorsWriter.Save(path, new Dictionary<string, Tensor> { ["fc.weight"] = w, ["fc.bias"] = ones(3) });
        using (var ck = SafetensorsCheckpoint.Open(path)) ck.LoadInto(module);
        TensorAssert.Equal(module.state_dict()["fc.weight"], w, "loaded");
    }

    static string WriteRaw(string header, byte[]? data = null, ulong? declaredLength = null)
    {
        var dir = TestPaths.NewTempDir("hostile");
        var path = Path.Combine(dir, "bad.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, declaredLength ?? (ulong)h.Length);
        fs.Write(len);
        fs.Write(h);
        fs.Write(data ?? Array.Empty<byte>());
        return path;
    }

    [Theory]
    [InlineData("header length", "{}", 0, 1000UL)]
    [InlineData("exceeds", "{}", 0, 1UL << 40)]
    [InlineData("unknown dtype 'Q7'", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, null)]
    [InlineData("outside the data section", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, null)]
    [InlineData("needs 16 bytes", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, null)]
    [InlineData("overlapping", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, null)]
    [InlineData("not valid JSON", "{\"w\":", 0, null)]
    [InlineData("invalid data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, null)]
    public void HostileFilesAreRejectedClearly(string expected, string header, int dataBytes, ulong? declared)
    {
        var path = WriteRaw(header, new byte[dataBytes], declared);
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(expected, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void TooShortFileIsRejected()
    {
        var dir = TestPaths.NewTempDir("hostile");
        var path = Path.Combine(dir, "tiny.safetensors");
        File.WriteAllBytes(path, new byte[3]);
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains("too short", ex.Message);
    }
}
