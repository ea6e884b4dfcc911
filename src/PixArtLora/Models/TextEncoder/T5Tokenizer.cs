using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

/// <summary>One prompt as the T5 encoder takes it: ids and mask, both padded to the requested length.</summary>
public sealed record T5Encoding(long[] InputIds, long[] AttentionMask)
{
    /// <summary>Number of real tokens (including the end-of-sequence token): the mask's ones, which come first.</summary>
    public int TokenCount => AttentionMask.Count(m => m != 0);
}

/// <summary>
/// T5's tokenizer as transformers' <c>T5Tokenizer</c> (legacy mode, the default for PixArt's tokenizer folders)
/// calls it, on top of Microsoft.ML.Tokenizers' SentencePiece Unigram model: the text is first split on the
/// literal special tokens (<c>&lt;pad&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c>, <c>&lt;extra_id_N&gt;</c>), whitespace
/// beside them is stripped, and SentencePiece encodes each piece between them. No beginning-of-sentence token.
/// </summary>
public sealed class T5Tokenizer
{
    readonly SentencePieceTokenizer _sp;
    readonly Dictionary<string, int> _specialTokens;
    readonly Regex _specialSplitter;
    readonly Dictionary<int, string> _pieceOfId;

    public int PadTokenId { get; }
    public int EosTokenId { get; }
    public int UnkTokenId { get; }
    /// <summary>SentencePiece pieces plus the extra ids (32100 for T5).</summary>
    public int VocabSize { get; }
    public int ExtraIds { get; }

    T5Tokenizer(SentencePieceTokenizer sp, int pieceCount, int extraIds)
    {
        _sp = sp;
        ExtraIds = extraIds;
        VocabSize = pieceCount + extraIds;
        PadTokenId = sp.Vocabulary.TryGetValue("<pad>", out int pad) ? pad : 0;
        EosTokenId = sp.EndOfSentenceId;
        UnkTokenId = sp.UnknownId;
        _specialTokens = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["<pad>"] = PadTokenId, ["</s>"] = EosTokenId, [sp.UnknownToken] = UnkTokenId,
        };
        for (int i = 0; i < extraIds; i++) _specialTokens[$"<extra_id_{i}>"] = VocabSize - 1 - i;
        // Longest first, so that at one position the longest special token wins (as transformers' trie split does).
        _specialSplitter = new Regex(string.Join("|", _specialTokens.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape)),
            RegexOptions.CultureInvariant);
        _pieceOfId = sp.Vocabulary.GroupBy(kv => kv.Value).ToDictionary(g => g.Key, g => g.First().Key);
        foreach (var (token, id) in _specialTokens) _pieceOfId[id] = token;
    }

    /// <summary>
    /// Loads <c>spiece.model</c>, or a <c>tokenizer/</c> folder holding it (whose tokenizer_config.json may set
    /// <c>extra_ids</c>; <c>legacy: false</c> is refused because PixArt's folders never use it).
    /// </summary>
    public static T5Tokenizer Load(string path)
    {
        int extraIds = 100;
        string model = path;
        if (Directory.Exists(path))
        {
            model = Path.Combine(path, "spiece.model");
            string configPath = Path.Combine(path, "tokenizer_config.json");
            if (File.Exists(configPath)) extraIds = ReadTokenizerConfig(configPath);
        }
        if (!File.Exists(model)) throw new FileNotFoundException($"T5 SentencePiece model not found: {model}", model);
        return FromModel(File.ReadAllBytes(model), extraIds, model);
    }

    static int ReadTokenizerConfig(string configPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
            var root = doc.RootElement;
            if (root.TryGetProperty("legacy", out var legacy) && legacy.ValueKind == JsonValueKind.False)
                throw new NotSupportedException($"{configPath}: \"legacy\": false is not supported (transformers' non-legacy T5 tokenization); PixArt's tokenizer uses the legacy behaviour");
            return root.TryGetProperty("extra_ids", out var e) && e.TryGetInt32(out int n) ? n : 100;
        }
        catch (JsonException ex) { throw new InvalidDataException($"{configPath}: not valid JSON ({ex.Message})"); }
    }

    /// <summary>Builds the tokenizer from the bytes of a SentencePiece Unigram <c>spiece.model</c>.</summary>
    public static T5Tokenizer FromModel(byte[] spieceModel, int extraIds = 100, string source = "spiece.model")
    {
        var patched = SentencePieceModelFile.PatchForMlTokenizers(spieceModel, source);
        SentencePieceTokenizer sp;
        try
        {
            using var stream = new MemoryStream(patched);
            sp = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{source}: not a usable SentencePiece model ({e.GetType().Name}: {e.Message})", e);
        }
        return new T5Tokenizer(sp, SentencePieceModelFile.PieceCount(spieceModel, source), extraIds);
    }

    /// <summary>
    /// Token ids of <paramref name="text"/> with no end-of-sequence token, no truncation, no padding
    /// (transformers' <c>tokenizer.encode(text, add_special_tokens=False)</c>).
    /// </summary>
    public List<int> Tokenize(string text)
    {
        var ids = new List<int>();
        foreach (var (segment, specialId) in SplitOnSpecialTokens(text))
        {
            if (specialId is int id) { ids.Add(id); continue; }
            // SentencePiece merges a run of unknown characters into one <unk>; Microsoft.ML.Tokenizers emits
            // one per character, so collapse consecutive unknowns within the segment.
            int segmentStart = ids.Count;
            foreach (int piece in _sp.EncodeToIds(segment, addBeginningOfSentence: false, addEndOfSentence: false))
                if (!(piece == UnkTokenId && ids.Count > segmentStart && ids[^1] == UnkTokenId))
                    ids.Add(piece);
        }
        return ids;
    }

    /// <summary>The pieces of <see cref="Tokenize"/> as strings (special tokens as written, unknowns as &lt;unk&gt;).</summary>
    public List<string> TokenizeToPieces(string text) =>
        Tokenize(text).Select(id => _pieceOfId.TryGetValue(id, out var p) ? p : $"<id {id}>").ToList();

    /// <summary>
    /// The prompt as diffusers' PixArt pipelines tokenize it (<c>padding="max_length", truncation=True,
    /// max_length=M, add_special_tokens=True</c>): at most M−1 tokens, then the end-of-sequence token (unless the
    /// ids already end with one, e.g. a literal "&lt;/s&gt;"), right-padded with the pad id; mask 1 on real tokens.
    /// </summary>
    public T5Encoding Encode(string text, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), $"max length {maxLength} must be at least 1");
        var ids = Tokenize(text);
        if (ids.Count > maxLength - 1) ids.RemoveRange(maxLength - 1, ids.Count - (maxLength - 1));
        if (ids.Count == 0 || ids[^1] != EosTokenId) ids.Add(EosTokenId);
        var inputIds = new long[maxLength];
        var mask = new long[maxLength];
        for (int i = 0; i < maxLength; i++)
        {
            inputIds[i] = i < ids.Count ? ids[i] : PadTokenId;
            mask[i] = i < ids.Count ? 1 : 0;
        }
        return new T5Encoding(inputIds, mask);
    }

    /// <summary>Encodes a batch: input ids and attention mask, both int64 [B, maxLength], on <paramref name="device"/>.</summary>
    public (Tensor InputIds, Tensor AttentionMask) EncodeBatch(IReadOnlyList<string> texts, int maxLength, Device? device = null)
    {
        var ids = new long[texts.Count * maxLength];
        var mask = new long[texts.Count * maxLength];
        for (int b = 0; b < texts.Count; b++)
        {
            var e = Encode(texts[b], maxLength);
            e.InputIds.CopyTo(ids, b * maxLength);
            e.AttentionMask.CopyTo(mask, b * maxLength);
        }
        long[] shape = { texts.Count, maxLength };
        return (tensor(ids, shape, device: device ?? CPU), tensor(mask, shape, device: device ?? CPU));
    }

    /// <summary>
    /// Splits on literal special tokens like transformers' tokenize(): special tokens stand alone, the text
    /// beside each one loses its adjacent whitespace (Python's strip), and pieces left empty are dropped.
    /// </summary>
    IEnumerable<(string Text, int? SpecialId)> SplitOnSpecialTokens(string text)
    {
        var parts = new List<(string Text, int? SpecialId)>();
        int pos = 0;
        foreach (Match m in _specialSplitter.Matches(text))
        {
            parts.Add((text[pos..m.Index], null));
            parts.Add((m.Value, _specialTokens[m.Value]));
            pos = m.Index + m.Length;
        }
        parts.Add((text[pos..], null));
        for (int i = 0; i < parts.Count; i++)
        {
            if (parts[i].SpecialId is null) continue;
            if (i > 0 && parts[i - 1].SpecialId is null) parts[i - 1] = (PythonText.RStrip(parts[i - 1].Text), null);
            if (i + 1 < parts.Count && parts[i + 1].SpecialId is null) parts[i + 1] = (PythonText.LStrip(parts[i + 1].Text), null);
        }
        return parts.Where(p => p.SpecialId is not null || p.Text.Length > 0);
    }
}
