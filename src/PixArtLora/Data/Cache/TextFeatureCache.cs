using PixArtLora.Models.TextEncoder;
using PixArtLora.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Data.Cache;

/// <summary>Progress of <see cref="TextFeatureCache.EnsureCached"/>: prompts handled so far of the total to handle.</summary>
public readonly record struct TextCacheProgress(int Done, int Total);

/// <summary>
/// Precomputed T5 features of captions, so that training (and repeated inference) never runs the 4.7 B-parameter
/// encoder twice on the same text. Each caption's embeddings are stored trimmed to its real token count in a
/// <see cref="FeatureStore"/> and re-padded with zeros to the token length on load (the mask marks the real
/// tokens). Entries are keyed by (encoder fingerprint, token length, caption): another model, length or
/// caption misses only the entries it affects. The encoder is created only when something must be encoded,
/// and <see cref="ReleaseEncoder"/> frees it.
/// </summary>
public sealed class TextFeatureCache : IDisposable
{
    const string EmbeddingName = "emb";

    readonly FeatureStore _store;
    readonly Func<IPromptEncoder> _createEncoder;
    IPromptEncoder? _encoder;

    /// <summary>Identity of the encoder (see <see cref="T5PromptEncoder.Fingerprint"/>).</summary>
    public string ModelFingerprint { get; }
    public int MaxLength { get; }
    /// <summary>How many prompts were sent to the encoder since this cache was opened.</summary>
    public int EncodedCount { get; private set; }
    public FeatureStore Store => _store;

    /// <param name="folder">Cache folder (created if needed); may be shared by several models and lengths.</param>
    /// <param name="modelFingerprint">Changes whenever the encoder's output would (weights, tokenizer, dtype, preprocessing).</param>
    /// <param name="maxLength">Token length results are padded to; must equal the encoder's.</param>
    /// <param name="createEncoder">Called once, at the first cache miss.</param>
    public TextFeatureCache(string folder, string modelFingerprint, int maxLength, Func<IPromptEncoder> createEncoder)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), $"token length {maxLength} must be positive");
        _store = FeatureStore.Open(folder);
        ModelFingerprint = modelFingerprint;
        MaxLength = maxLength;
        _createEncoder = createEncoder;
    }

    /// <summary>
    /// Opens a cache for a T5 <c>text_encoder/</c> + <c>tokenizer/</c> pair; the encoder is loaded with
    /// <paramref name="options"/> only on a miss.
    /// </summary>
    public static TextFeatureCache ForT5(string folder, string textEncoderPath, string tokenizerPath, T5PromptEncoderOptions options) =>
        new(folder, T5PromptEncoder.Fingerprint(textEncoderPath, tokenizerPath, options.DType, options.Preprocessing), options.MaxLength,
            () => T5PromptEncoder.Load(textEncoderPath, tokenizerPath, options));

    /// <summary>The store key of <paramref name="caption"/> under this model and token length.</summary>
    public string KeyOf(string caption) => FeatureStore.Key("t5-text/1", ModelFingerprint, MaxLength.ToString(), caption);

    public bool Contains(string caption) => _store.Contains(KeyOf(caption));

    /// <summary>
    /// Embeddings [B, MaxLength, D] (zero past each caption's tokens) and mask int64 [B, MaxLength] for
    /// <paramref name="captions"/>, from the cache where present; the others are encoded in one batch and stored.
    /// </summary>
    public (Tensor Embeddings, Tensor Mask) GetOrEncode(IReadOnlyList<string> captions, Device? device = null)
    {
        if (captions.Count == 0) throw new ArgumentException("no captions to encode", nameof(captions));
        using var scope = NewDisposeScope();
        var missing = captions.Distinct().Where(c => !Contains(c)).ToList();
        if (missing.Count > 0) EncodeAndStore(missing);
        var rows = captions.Select(Load).ToList();
        var embeddings = stack(rows.Select(r => r.Embeddings).ToArray());
        var mask = stack(rows.Select(r => r.Mask).ToArray());
        if (device != null) { embeddings = embeddings.to(device); mask = mask.to(device); }
        return (embeddings.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Encodes every caption not cached yet (plus the empty prompt used for classifier-free-guidance dropout,
    /// unless told otherwise), <paramref name="batchSize"/> at a time, writing as it goes. Returns how many
    /// captions were encoded; 0 means the cache was complete and no encoder was loaded.
    /// </summary>
    public int EnsureCached(IEnumerable<string> captions, int batchSize = 8, IProgress<TextCacheProgress>? progress = null,
        bool includeEmptyPrompt = true, CancellationToken cancellationToken = default)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size {batchSize} must be positive");
        var all = includeEmptyPrompt ? captions.Prepend("") : captions;
        var missing = all.Distinct().Where(c => !Contains(c)).ToList();
        progress?.Report(new TextCacheProgress(0, missing.Count));
        for (int start = 0; start < missing.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            EncodeAndStore(missing.GetRange(start, Math.Min(batchSize, missing.Count - start)));
            progress?.Report(new TextCacheProgress(Math.Min(start + batchSize, missing.Count), missing.Count));
        }
        _store.Flush();
        return missing.Count;
    }

    /// <summary>Drops every entry that is not one of <paramref name="captions"/> under this model and length.</summary>
    public int Prune(IEnumerable<string> captions, bool keepEmptyPrompt = true)
    {
        var keep = (keepEmptyPrompt ? captions.Append("") : captions).Select(KeyOf).ToHashSet();
        return _store.Prune(keep);
    }

    /// <summary>Frees the encoder (e.g. before training starts); a later miss loads it again.</summary>
    public void ReleaseEncoder()
    {
        if (_encoder is null) return;
        _encoder.Dispose();
        _encoder = null;
        // Training never touches that memory again: give it back (see CpuAllocatorTuning.ReturnFreeMemory).
        CpuAllocatorTuning.ReturnFreeMemory();
    }

    void EncodeAndStore(List<string> captions)
    {
        using var scope = NewDisposeScope();
        _encoder ??= _createEncoder();
        if (_encoder.MaxLength != MaxLength)
            throw new InvalidOperationException($"text encoder pads to {_encoder.MaxLength} tokens but the cache was opened for {MaxLength}");
        var (embeddings, mask) = _encoder.Encode(captions);
        EncodedCount += captions.Count;
        var lengths = mask.sum(1).cpu().data<long>().ToArray();
        for (int i = 0; i < captions.Count; i++)
        {
            // Right padding: the real tokens are the first lengths[i] positions.
            var trimmed = embeddings[i].narrow(0, 0, lengths[i]);
            _store.Put(KeyOf(captions[i]), new Dictionary<string, Tensor> { [EmbeddingName] = trimmed });
        }
    }

    (Tensor Embeddings, Tensor Mask) Load(string caption)
    {
        string key = KeyOf(caption);
        if (!_store.TryGet(key, out var tensors) || !tensors.TryGetValue(EmbeddingName, out var trimmed))
            throw new InvalidDataException($"{_store.Folder}: entry {key} for caption \"{caption}\" is missing or has no '{EmbeddingName}' tensor");
        long length = trimmed.shape[0];
        if (trimmed.dim() != 2 || length < 1 || length > MaxLength)
            throw new InvalidDataException($"{_store.Folder}: entry {key} holds [{string.Join(", ", trimmed.shape)}], expected [1..{MaxLength}, D]");
        var padded = nn.functional.pad(trimmed, new long[] { 0, 0, 0, MaxLength - length });
        var mask = zeros(MaxLength, int64);
        mask.narrow(0, 0, length).fill_(1);
        return (padded, mask);
    }

    public void Dispose()
    {
        ReleaseEncoder();
        _store.Dispose();
    }
}
