using PixArtLora.Data.Images;
using static TorchSharp.torch;

namespace PixArtLora.Data;

/// <summary>How sampled items become a training batch: transforms, caption choice, output tensors.</summary>
public sealed record BatchOptions
{
    /// <summary>Seeds crops, flips, caption choice and dropout; each item's draws depend only on (seed, epoch, item).</summary>
    public long Seed { get; init; }

    /// <summary>Center (the official trainers) or random crop.</summary>
    public CropMode Crop { get; init; } = CropMode.Center;

    /// <summary>Mirror each image with probability 0.5.</summary>
    public bool RandomFlip { get; init; }

    /// <summary>
    /// Resampling filter; null picks the official choice for the bucket's base resolution:
    /// Lanczos for 2048 and above, bicubic below.
    /// </summary>
    public ResizeFilter? Filter { get; init; }

    /// <summary>Probability of replacing the caption by the empty prompt (classifier-free guidance training); 0.1 as the official trainer.</summary>
    public double CaptionDropout { get; init; } = 0.1;

    /// <summary>Probability of using the caption rather than the alternate (sharegpt4v) caption when an item has both; 1 uses only captions.</summary>
    public double RealPromptRatio { get; init; } = 1.0;

    /// <summary>Dtype of the pixel and micro-condition tensors.</summary>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;

    /// <summary>Device of the batch tensors (null: CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>Limits for decoding (the dataset's header check already applied them to sizes).</summary>
    public ImageLimits ImageLimits { get; init; } = ImageLimits.Default;

    /// <summary>Where warnings about images that fail to decode go; null silences them (they are still counted).</summary>
    public Action<string>? Warn { get; init; } = message => Console.Error.WriteLine($"warning: {message}");
}
