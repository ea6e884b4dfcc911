using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using PixArtLora.Models.TextEncoder;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// Kind "tokenizer": every group of prompts in case.json ("prompts", "pipeline_prompts", "special_prompts", …)
/// tokenized at every max length the tensors name (<c>{group}input_ids_{M}</c>), ids and masks exact.
/// Also: untruncated token counts, the pieces of special prompts, and that our Python-style lower().strip()
/// of the raw prompts gives the case's pipeline prompts.
/// </summary>
public sealed class TokenizerParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds { get; } = new[] { "tokenizer" };

    public void Run(ParityCase c)
    {
        var tokenizer = T5Tokenizer.Load(FindModel(c));
        var json = c.Json;
        if (json.TryGetProperty("pad_token_id", out var pad)) Assert.Equal(pad.GetInt32(), tokenizer.PadTokenId);
        if (json.TryGetProperty("eos_token_id", out var eos)) Assert.Equal(eos.GetInt32(), tokenizer.EosTokenId);
        if (json.TryGetProperty("unk_token_id", out var unk)) Assert.Equal(unk.GetInt32(), tokenizer.UnkTokenId);

        int checkedGroups = 0;
        foreach (var tensorName in json.GetProperty("tensors").EnumerateObject().Select(p => p.Name))
        {
            var m = Regex.Match(tensorName, @"^(.*)input_ids_(\d+)$");
            if (!m.Success) continue;
            string group = m.Groups[1].Value;
            int maxLength = int.Parse(m.Groups[2].Value);
            var prompts = Strings(json, group + "prompts");
            var (ids, mask) = tokenizer.EncodeBatch(prompts, maxLength);
            AssertRows(c, prompts, ids, c.Tensor(tensorName), tensorName);
            TensorAssert.Equal(mask, c.Tensor($"{group}attention_mask_{maxLength}"), $"{c.Name}:{group}attention_mask_{maxLength}");
            checkedGroups++;
        }
        Assert.True(checkedGroups > 0, $"{c.Name}: no *input_ids_M tensors in case.json");

        if (c.Has("num_tokens_untruncated"))
        {
            var prompts = Strings(json, "prompts");
            var expected = c.Tensor("num_tokens_untruncated").data<long>().ToArray();
            for (int i = 0; i < prompts.Count; i++)
                Assert.True(expected[i] == tokenizer.Tokenize(prompts[i]).Count + 1,
                    $"{c.Name}: prompt {i} ({Show(prompts[i])}) has {tokenizer.Tokenize(prompts[i]).Count + 1} tokens with eos, expected {expected[i]}");
        }

        if (json.TryGetProperty("special_prompts_hf_tokens", out var pieces))
        {
            var prompts = Strings(json, "special_prompts");
            int i = 0;
            foreach (var row in pieces.EnumerateArray())
                Assert.Equal(row.EnumerateArray().Select(e => e.GetString()!).ToList(), tokenizer.TokenizeToPieces(prompts[i++]));
        }

        if (json.TryGetProperty("pipeline_prompts", out _) && json.TryGetProperty("prompts", out _)
            && Strings(json, "prompts").Count == Strings(json, "pipeline_prompts").Count)
        {
            var raw = Strings(json, "prompts");
            var lowered = Strings(json, "pipeline_prompts");
            for (int i = 0; i < raw.Count; i++)
                Assert.True(lowered[i] == PromptPreprocessing.Apply(raw[i], PromptPreprocessing.Mode.LowerStrip),
                    $"{c.Name}: lower().strip() of prompt {i} {Show(raw[i])} gave {Show(PromptPreprocessing.Apply(raw[i], PromptPreprocessing.Mode.LowerStrip))}, expected {Show(lowered[i])}");
        }
    }

    static void AssertRows(ParityCase c, IReadOnlyList<string> prompts, Tensor actual, Tensor expected, string name)
    {
        Assert.Equal(expected.shape, actual.shape);
        for (int i = 0; i < prompts.Count; i++)
        {
            var a = actual[i].data<long>().ToArray();
            var e = expected[i].data<long>().ToArray();
            int first = Enumerable.Range(0, e.Length).FirstOrDefault(k => a[k] != e[k], -1);
            if (first >= 0)
                Assert.Fail($"{c.Name}:{name} row {i} {Show(prompts[i])} differs from token {first}: " +
                            $"got [{string.Join(", ", a.Skip(first).Take(8))}], expected [{string.Join(", ", e.Skip(first).Take(8))}]");
        }
    }

    static List<string> Strings(JsonElement json, string property) =>
        json.GetProperty(property).EnumerateArray().Select(e => e.GetString()!).ToList();

    static string Show(string s) => JsonSerializer.Serialize(s.Length > 60 ? s[..60] + "…" : s);

    /// <summary>The case names spiece.model relative to another repository; use our copy when its hash matches.</summary>
    static string FindModel(ParityCase c)
    {
        string rel = c.Json.TryGetProperty("spiece_model", out var p) ? p.GetString()! : "spiece.model";
        string? sha = c.Json.TryGetProperty("spiece_model_sha256", out var s) ? s.GetString() : null;
        var candidates = new[]
        {
            c.PathOf(rel), c.PathOf("spiece.model"), Path.Combine(TestPaths.RepoRoot, rel),
            TestPaths.Fixture("tokenizer", "t5", "spiece.model"),
        };
        foreach (var path in candidates.Where(File.Exists))
        {
            if (sha == null) return path;
            using var f = File.OpenRead(path);
            if (Convert.ToHexString(SHA256.HashData(f)).Equals(sha, StringComparison.OrdinalIgnoreCase)) return path;
        }
        throw new FileNotFoundException($"{c.Name}: no spiece.model with sha256 {sha} among {string.Join(", ", candidates)}");
    }
}
