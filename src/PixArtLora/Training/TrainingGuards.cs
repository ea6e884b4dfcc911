using System.Globalization;

namespace PixArtLora.Training;

/// <summary>Thrown when the loss or the gradient norm stops being a finite number; training must stop.</summary>
public sealed class NonFiniteLossException : Exception
{
    public NonFiniteLossException(string quantity, double value, long step, string? lastCheckpoint)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"{quantity} became {value} at step {step}; training stopped. ") +
            (lastCheckpoint is null ? "No checkpoint was written yet. " : $"The last good checkpoint is {lastCheckpoint}. ") +
            "Common causes: a learning rate too high for this optimizer, fp16 overflow (use bf16 or fp32), or a corrupt input; " +
            "try a lower --learning_rate, --max_grad_norm 1.0, or --mixed_precision no.")
    {
        Quantity = quantity;
        Value = value;
        Step = step;
        LastCheckpoint = lastCheckpoint;
    }

    public string Quantity { get; }
    public double Value { get; }
    public long Step { get; }
    public string? LastCheckpoint { get; }
}

/// <summary>Checks the training loop runs after every step so that a diverged run stops with a clear message.</summary>
public static class TrainingGuards
{
    /// <summary>Throws <see cref="NonFiniteLossException"/> when <paramref name="value"/> is NaN or ±∞.</summary>
    /// <param name="value">The loss (or gradient norm) of this step.</param>
    /// <param name="step">The global step it belongs to.</param>
    /// <param name="quantity">What the value is, for the message ("loss", "gradient norm").</param>
    /// <param name="lastCheckpoint">The newest checkpoint folder, named in the message so the user knows what survives.</param>
    public static void EnsureFinite(double value, long step, string quantity = "loss", string? lastCheckpoint = null)
    {
        if (!double.IsFinite(value)) throw new NonFiniteLossException(quantity, value, step, lastCheckpoint);
    }
}
