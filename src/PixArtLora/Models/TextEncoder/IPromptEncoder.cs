using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

/// <summary>Turns prompts into the text features PixArt's transformer conditions on.</summary>
public interface IPromptEncoder : IDisposable
{
    /// <summary>Token length every result is padded to (120 for PixArt-α, 300 for PixArt-Σ).</summary>
    int MaxLength { get; }

    /// <summary>
    /// Embeddings [B, MaxLength, D] and attention mask int64 [B, MaxLength] (1 on real tokens, which come
    /// first, 0 on padding). Embeddings are zero at padded positions.
    /// </summary>
    (Tensor Embeddings, Tensor Mask) Encode(IReadOnlyList<string> prompts);
}
