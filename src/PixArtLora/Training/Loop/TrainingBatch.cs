using static TorchSharp.torch;

namespace PixArtLora.Training.Loop;

/// <summary>
/// One micro-batch as the transformer needs it: the VAE posterior of each image (a fresh latent is drawn from it at
/// every step with the trainer's generator, exactly as encoding on the fly would), the caption features, and
/// PixArt-α's micro-conditions. Tensors live on the CPU until the step moves them; dispose the batch after use.
/// </summary>
public sealed class TrainingBatch : IDisposable
{
    /// <summary>Posterior mean [B, 4, h, w], before the VAE scaling factor.</summary>
    public required Tensor LatentMean { get; init; }
    /// <summary>Posterior standard deviation [B, 4, h, w].</summary>
    public required Tensor LatentStd { get; init; }
    /// <summary>Caption features [B, L, D] (zero past each caption's tokens).</summary>
    public required Tensor TextEmbeddings { get; init; }
    /// <summary>Caption mask int64 [B, L]: 1 on tokens, 0 on padding.</summary>
    public required Tensor TextMask { get; init; }
    /// <summary>α-MS micro-condition (height, width) [B, 2].</summary>
    public required Tensor Resolution { get; init; }
    /// <summary>α-MS micro-condition height / width [B, 1].</summary>
    public required Tensor AspectRatio { get; init; }
    /// <summary>The captions used (empty where dropped for classifier-free guidance).</summary>
    public required IReadOnlyList<string> Captions { get; init; }
    /// <summary>Epoch of the batch (0-based).</summary>
    public required int Epoch { get; init; }
    /// <summary>Where the data stands after this batch: epoch and batch index of the next one.</summary>
    public required (int Epoch, int BatchIndex) Next { get; init; }

    public int Count => (int)LatentMean.shape[0];

    public void Dispose()
    {
        LatentMean.Dispose();
        LatentStd.Dispose();
        TextEmbeddings.Dispose();
        TextMask.Dispose();
        Resolution.Dispose();
        AspectRatio.Dispose();
    }
}

/// <summary>Where the training loop gets its micro-batches from.</summary>
public interface ITrainingBatches : IDisposable
{
    /// <summary>Micro-batches per epoch.</summary>
    int BatchesPerEpoch { get; }

    /// <summary>Micro-batches from (epoch, batch index) on, endlessly across epochs; the loop stops when done.</summary>
    IEnumerable<TrainingBatch> From(int epoch, int batchIndex);
}
