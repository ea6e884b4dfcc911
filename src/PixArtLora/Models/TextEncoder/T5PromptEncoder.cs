using System.Security.Cryptography;
using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

/// <summary>How to run the T5 text encoder.</summary>
public sealed record T5PromptEncoderOptions
{
    /// <summary>Token length (registry: 120 for PixArt-α, 300 for PixArt-Σ).</summary>
    public int MaxLength { get; init; } = 120;
    /// <summary>Where T5 runs. Keep it on CPU while the transformer uses the GPU to save ~9.5 GB of GPU memory.</summary>
    public Device Device { get; init; } = CPU;
    /// <summary>Weights and compute dtype; null = as stored. bfloat16 is about 4× faster than float32 on CPU.</summary>
    public ScalarType? DType { get; init; }
    /// <summary>Where results are put; null = <see cref="Device"/>.</summary>
    public Device? OutputDevice { get; init; }
    /// <summary>Prompt clean-up before tokenizing; diffusers' PixArt pipelines lower-case and strip.</summary>
    public PromptPreprocessing.Mode Preprocessing { get; init; } = PromptPreprocessing.Mode.LowerStrip;
    /// <summary>
    /// Run the encoder over the longest real prompt of the batch instead of all MaxLength positions. Outputs
    /// at real tokens are the same up to float rounding (padded keys get exactly zero attention weight);
    /// much faster for short prompts.
    /// </summary>
    public bool SkipPadding { get; init; } = true;
}

/// <summary>
/// Tokenizer + T5 encoder as PixArt uses them: prompt → (embeddings [B, L, D], mask [B, L]) with padded positions
/// zeroed. Dispose it to release the encoder's memory once prompts are encoded.
/// </summary>
public sealed class T5PromptEncoder : IPromptEncoder
{
    readonly T5Tokenizer _tokenizer;
    T5EncoderModel? _model;

    public T5PromptEncoderOptions Options { get; }
    public int MaxLength => Options.MaxLength;
    public T5Tokenizer Tokenizer => _tokenizer;
    public T5EncoderModel Model => _model ?? throw new ObjectDisposedException(nameof(T5PromptEncoder), "the T5 encoder was released");

    public T5PromptEncoder(T5Tokenizer tokenizer, T5EncoderModel model, T5PromptEncoderOptions options)
    {
        if (options.MaxLength < 1) throw new ArgumentOutOfRangeException(nameof(options), $"MaxLength {options.MaxLength} must be positive");
        _tokenizer = tokenizer; _model = model; Options = options;
    }

    /// <summary>Loads a <c>text_encoder/</c> folder and a <c>tokenizer/</c> folder (or spiece.model file).</summary>
    public static T5PromptEncoder Load(string textEncoderPath, string tokenizerPath, T5PromptEncoderOptions? options = null)
    {
        options ??= new T5PromptEncoderOptions();
        var tokenizer = T5Tokenizer.Load(tokenizerPath);
        var model = T5EncoderModel.Load(textEncoderPath, options.Device, options.DType);
        return new T5PromptEncoder(tokenizer, model, options);
    }

    public (Tensor Embeddings, Tensor Mask) Encode(IReadOnlyList<string> prompts)
    {
        var model = Model;
        using var scope = NewDisposeScope();
        var texts = prompts.Select(p => PromptPreprocessing.Apply(p, Options.Preprocessing)).ToList();
        var (ids, mask) = _tokenizer.EncodeBatch(texts, MaxLength, model.Device);
        long used = MaxLength;
        if (Options.SkipPadding && texts.Count > 0) used = Math.Max(1, mask.sum(1).max().item<long>());
        var hidden = model.forward(ids[.., ..(int)used], mask[.., ..(int)used]);
        // Zero the padded positions: what the cache stores, and what a masked transformer ignores anyway.
        hidden = hidden * mask[.., ..(int)used].unsqueeze(-1).to(hidden.dtype);
        if (used < MaxLength) hidden = nn.functional.pad(hidden, new long[] { 0, 0, 0, MaxLength - used });
        var output = Options.OutputDevice ?? model.Device;
        return (hidden.to(output).MoveToOuterDisposeScope(), mask.to(output).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// A string that changes whenever the features would: config.json, the weight files (name, size, header and
    /// sampled data: a fine-tuned copy differs, a renamed or moved folder does not), spiece.model, the dtype
    /// and the preprocessing. The token length is not part of it. Reads about 1 MB, never the whole weights.
    /// </summary>
    public static string Fingerprint(string textEncoderPath, string tokenizerPath, ScalarType? dtype, PromptPreprocessing.Mode preprocessing)
    {
        var parts = new List<string> { "t5-prompt-encoder/1" };
        string folder = Directory.Exists(textEncoderPath) ? textEncoderPath : Path.GetDirectoryName(Path.GetFullPath(textEncoderPath))!;
        parts.Add(FeatureStoreHash(File.ReadAllBytes(Path.Combine(folder, "config.json"))));
        using (var checkpoint = Directory.Exists(textEncoderPath) ? SafetensorsCheckpoint.Open(textEncoderPath, "model") : SafetensorsCheckpoint.Open(textEncoderPath))
        {
            foreach (var file in checkpoint.Files.OrderBy(f => Path.GetFileName(f.Path), StringComparer.Ordinal))
                parts.Add($"{Path.GetFileName(file.Path)}:{SampledFileHash(file.Path)}");
            parts.Add("stored:" + (dtype?.ToString() ?? string.Join(",", checkpoint.Files.SelectMany(f => f.Entries.Values).Select(e => e.Dtype).Distinct().Order())));
        }
        string spiece = Directory.Exists(tokenizerPath) ? Path.Combine(tokenizerPath, "spiece.model") : tokenizerPath;
        parts.Add(FeatureStoreHash(File.ReadAllBytes(spiece)));
        string tokenizerConfig = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(spiece))!, "tokenizer_config.json");
        if (File.Exists(tokenizerConfig)) parts.Add(FeatureStoreHash(File.ReadAllBytes(tokenizerConfig)));
        parts.Add($"preprocessing:{preprocessing}");
        return FeatureStoreHash(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", parts)));
    }

    static string FeatureStoreHash(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    /// <summary>SHA-256 over the file length, its first 1 MiB (safetensors header) and 64 evenly spaced 16 KiB samples.</summary>
    internal static string SampledFileHash(string path)
    {
        const int headBytes = 1 << 20, samples = 64, sampleBytes = 16 << 10;
        using var handle = File.OpenHandle(path);
        long length = RandomAccess.GetLength(handle);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(BitConverter.GetBytes(length));
        var buffer = new byte[Math.Max(headBytes, sampleBytes)];
        int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(headBytes, length)), 0);
        sha.AppendData(buffer, 0, n);
        if (length > headBytes)
            for (int i = 0; i < samples; i++)
            {
                long offset = headBytes + (length - headBytes - sampleBytes) * i / (samples - 1);
                if (offset < headBytes) offset = headBytes;
                n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(sampleBytes, length - offset)), offset);
                sha.AppendData(buffer, 0, n);
            }
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>Releases the encoder's weights; the tokenizer stays usable.</summary>
    public void Dispose()
    {
        _model?.Dispose();
        _model = null;
    }
}
