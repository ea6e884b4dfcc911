using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>
/// Text features of some prompts as the transformer takes them: embeddings [N, L, D] (T5 output, before
/// caption_projection) and the attention mask [N, L] (int64, 1 on real tokens). Owns its tensors.
/// </summary>
public sealed class PromptEmbeddings : IDisposable
{
    /// <summary>[N, L, D] caption features.</summary>
    public Tensor Embeddings { get; }
    /// <summary>[N, L] int64, 1 = token, 0 = padding.</summary>
    public Tensor Mask { get; }

    /// <summary>Number of prompts.</summary>
    public long Count => Embeddings.shape[0];
    /// <summary>Token length L.</summary>
    public long Length => Embeddings.shape[1];

    /// <summary>Takes ownership of detached copies of <paramref name="embeddings"/> and <paramref name="mask"/>.</summary>
    public PromptEmbeddings(Tensor embeddings, Tensor mask)
    {
        if (embeddings.dim() != 3)
            throw new ArgumentException($"prompt embeddings: shape [{string.Join(", ", embeddings.shape)}], expected [N, L, D]");
        if (mask.dim() != 2 || mask.shape[0] != embeddings.shape[0] || mask.shape[1] != embeddings.shape[1])
            throw new ArgumentException(
                $"prompt attention mask: shape [{string.Join(", ", mask.shape)}], expected [{embeddings.shape[0]}, {embeddings.shape[1]}]");
        Embeddings = embeddings.detach().clone().DetachFromDisposeScope();
        Mask = mask.detach().to(int64).clone().DetachFromDisposeScope();
    }

    /// <summary>Rows <paramref name="indices"/> (repeats allowed), as a new object.</summary>
    public PromptEmbeddings Select(IReadOnlyList<long> indices)
    {
        using var scope = NewDisposeScope();
        foreach (var i in indices)
            if (i < 0 || i >= Count) throw new ArgumentOutOfRangeException(nameof(indices), $"prompt index {i} outside 0..{Count - 1}");
        var idx = tensor(indices.ToArray(), dtype: int64, device: Embeddings.device);
        return new PromptEmbeddings(Embeddings.index_select(0, idx), Mask.index_select(0, idx.to(Mask.device)));
    }

    /// <summary>Row <paramref name="index"/> repeated <paramref name="times"/> times.</summary>
    public PromptEmbeddings Repeat(long index, int times) => Select(Enumerable.Repeat(index, times).ToList());

    /// <summary>Rows of <paramref name="first"/> followed by rows of <paramref name="second"/> (equal token lengths).</summary>
    public static PromptEmbeddings Concat(PromptEmbeddings first, PromptEmbeddings second)
    {
        if (first.Length != second.Length || first.Embeddings.shape[2] != second.Embeddings.shape[2])
            throw new ArgumentException(
                $"prompt embeddings of shapes [{string.Join(", ", first.Embeddings.shape)}] and [{string.Join(", ", second.Embeddings.shape)}] cannot be stacked");
        using var scope = NewDisposeScope();
        return new PromptEmbeddings(
            cat(new[] { first.Embeddings, second.Embeddings.to(first.Embeddings.dtype, first.Embeddings.device) }, 0),
            cat(new[] { first.Mask, second.Mask.to(first.Mask.device) }, 0));
    }

    /// <summary>A copy on <paramref name="device"/>.</summary>
    public PromptEmbeddings To(Device device)
    {
        using var scope = NewDisposeScope();
        return new PromptEmbeddings(Embeddings.to(device), Mask.to(device));
    }

    public void Dispose()
    {
        Embeddings.Dispose();
        Mask.Dispose();
    }
}
