using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PixArtLora.IO;
using PixArtLora.Models.Conversion;
using Xunit.Sdk;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// <c>checkpoint-keys</c>: an original PixArt .pth (torch.save of {'state_dict': ...}) converted to diffusers
/// names must equal, key for key and bit for bit, what diffusers' conversion script produced. Also checks
/// the .pth reader against the original tensors stored in io.safetensors, the per-key mapping table, and
/// the keys reported as dropped.
/// </summary>
public sealed class CheckpointKeysParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds { get; } = new[] { "checkpoint-keys" };

    public void Run(ParityCase c)
    {
        var files = c.Json.GetProperty("files");
        string original = c.PathOf(files.GetProperty("original").GetString()!);
        string expectedPath = c.PathOf(files.GetProperty("expected").GetString()!);

        CheckPthReader(c, original);
        CheckMappingTable(c, original);

        string output = Path.Combine(TestPaths.NewTempDir("checkpoint-keys"), "transformer");
        var report = PixArtCheckpointConverter.ToDiffusers(original, output, ConfigFromCase(c));

        using var expected = SafetensorsFile.Open(expectedPath);
        using var actual = SafetensorsCheckpoint.Open(output, "diffusion_pytorch_model");
        var missing = expected.Entries.Keys.Except(actual.Keys).OrderBy(k => k).ToList();
        var extra = actual.Keys.Except(expected.Entries.Keys).OrderBy(k => k).ToList();
        if (missing.Count + extra.Count > 0)
            throw new XunitException($"{c.Name}: key sets differ; missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}]");
        foreach (var key in expected.Entries.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            using var e = expected.Read(key);
            using var a = actual.Read(key);
            if (a.dtype != e.dtype) throw new XunitException($"{c.Name}:{key}: dtype {a.dtype}, expected {e.dtype}");
            TensorAssert.AllClose(a, e, c.Atol, c.Rtol, $"{c.Name}:{key}");
        }

        var expectedDropped = c.Json.GetProperty("self_consistency").GetProperty("unmapped_original_keys")
            .EnumerateArray().Select(x => x.GetString()!).OrderBy(k => k).ToList();
        Assert.Equal(expectedDropped, report.Dropped.Keys.OrderBy(k => k).ToList());
        Assert.Equal(expected.Entries.Count, report.TensorCount);
    }

    /// <summary>Every tensor our unpickler rebuilds equals the reference's copy in io.safetensors.</summary>
    static void CheckPthReader(ParityCase c, string original)
    {
        using var pth = PthFile.Open(original);
        var topKeys = c.Json.GetProperty("self_consistency").GetProperty("original_pth_top_level_keys").EnumerateArray().Select(x => x.GetString()).ToList();
        Assert.Equal(topKeys, pth.TopLevelKeys);
        var stored = c.Io.Entries.Keys.Where(k => k.StartsWith("original.", StringComparison.Ordinal)).ToList();
        Assert.Equal(stored.Select(k => k["original.".Length..]).OrderBy(k => k), pth.Names.OrderBy(k => k));
        foreach (var name in stored)
        {
            using var t = pth.Read(name["original.".Length..]);
            c.AssertClose(name, t, 0, 0);
        }
    }

    /// <summary>The case's per-key table (original → diffusers, copy or chunk i of n) matches our plan exactly.</summary>
    static void CheckMappingTable(ParityCase c, string original)
    {
        using var reader = StateDictReader.Open(original);
        var plan = PixArtKeyMap.ToDiffusers(reader.Names, original).Mappings.ToDictionary(m => m.Target);
        var chunk = new Regex(@"torch\.chunk\(W, (\d+), dim=0\)\[(\d+)\]");
        var table = c.Json.GetProperty("mapping").EnumerateArray().ToList();
        Assert.Equal(table.Count, plan.Count);
        foreach (var row in table)
        {
            string target = row.GetProperty("diffusers").GetString()!;
            string source = row.GetProperty("original").GetString()!;
            string transform = row.GetProperty("transform").GetString()!;
            if (!plan.TryGetValue(target, out var m)) throw new XunitException($"{c.Name}: no mapping produces '{target}'");
            Assert.Equal(new[] { source }, m.Sources);
            var match = chunk.Match(transform);
            (int count, int index) = match.Success ? (int.Parse(match.Groups[1].Value), int.Parse(match.Groups[2].Value)) : (1, 0);
            if (!match.Success && transform != "copy") throw new XunitException($"{c.Name}: unknown transform '{transform}' for {target}");
            Assert.Equal((count, index), (m.ChunkCount, m.ChunkIndex));
        }
    }

    /// <summary>
    /// The transformer config the reference script would write for the case's tiny model: the script's fixed XL
    /// values, with the tiny model's sizes and the per-image-size fields of the case in their place.
    /// </summary>
    static JsonObject ConfigFromCase(ParityCase c)
    {
        var tiny = c.Json.GetProperty("tiny_model");
        var config = JsonNode.Parse(c.Json.GetProperty("script_transformer_config_fixed_real_XL_values").GetRawText())!.AsObject();
        int hidden = tiny.GetProperty("hidden").GetInt32(), heads = tiny.GetProperty("heads").GetInt32();
        config["num_layers"] = tiny.GetProperty("depth").GetInt32();
        config["num_attention_heads"] = heads;
        config["attention_head_dim"] = hidden / heads;
        config["cross_attention_dim"] = hidden;
        config["caption_channels"] = tiny.GetProperty("caption_channels").GetInt32();
        foreach (var name in new[] { "in_channels", "out_channels", "patch_size" })
            if (tiny.TryGetProperty(name, out var v)) config[name] = v.GetInt32();
        if (c.Json.TryGetProperty("script_transformer_config_for_this_image_size", out var forSize))
            foreach (var (k, v) in JsonNode.Parse(forSize.GetRawText())!.AsObject()) config[k] = v?.DeepClone();
        else
            config["use_additional_conditions"] = tiny.GetProperty("micro").GetBoolean();
        return config;
    }
}
