using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>
/// PixArt-α-1024-MS's micro-conditions as diffusers' PixArtAlphaPipeline fills them: every image of the batch gets
/// the generated (binned) size as <c>resolution</c> = [height, width] and <c>aspect_ratio</c> = [height / width].
/// Models without additional conditions (every Σ and the other α releases) get none.
/// </summary>
public sealed record MicroConditions(int Height, int Width)
{
    /// <summary>The aspect ratio as the pipeline computes it: Python's float(height / width), stored as a float32 tensor.</summary>
    public double AspectRatio => (double)Height / Width;

    /// <summary>resolution [rows, 2] = (height, width) per row, in <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public Tensor Resolution(long rows, ScalarType dtype, Device device) =>
        tensor(new float[] { Height, Width }, dtype: float32).to(dtype, device).unsqueeze(0).expand(rows, 2).contiguous();

    /// <summary>aspect_ratio [rows, 1] per row, in <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public Tensor AspectRatioTensor(long rows, ScalarType dtype, Device device) =>
        tensor(new float[] { (float)AspectRatio }, dtype: float32).to(dtype, device).unsqueeze(0).expand(rows, 1).contiguous();
}
