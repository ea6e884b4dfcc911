namespace PixArtLora.Training.Checkpoints;

/// <summary>
/// Where a run stands: <paramref name="GlobalStep"/> optimizer updates done, in epoch <paramref name="Epoch"/>
/// (0-based), of which <paramref name="BatchInEpoch"/> batches (micro-batches, counting gradient accumulation)
/// have been consumed. A resumed run skips that many batches of that epoch's order and continues.
/// </summary>
public sealed record TrainingPosition(long GlobalStep, long Epoch, long BatchInEpoch)
{
    public static TrainingPosition Start { get; } = new(0, 0, 0);
}
