using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>
/// What the network predicts (diffusers' <c>prediction_type</c>) and the conversions between eps, x_0 and v at a
/// point x_t = alpha · x_0 + sigma · eps of the variance-preserving process; plus the x_0 clipping options.
/// </summary>
internal static class Prediction
{
    public static readonly string[] Types = { "epsilon", "sample", "v_prediction" };

    /// <summary>The predicted clean sample x_0.</summary>
    public static Tensor ToX0(string type, Tensor output, Tensor sample, double alpha, double sigma) => type switch
    {
        "epsilon" => (sample - sigma * output) / alpha,
        "sample" => output,
        "v_prediction" => alpha * sample - sigma * output,
        _ => throw new ArgumentException($"prediction_type \"{type}\" is not supported; expected one of {string.Join(", ", Types)}"),
    };

    /// <summary>The predicted noise eps.</summary>
    public static Tensor ToEps(string type, Tensor output, Tensor sample, double alpha, double sigma) => type switch
    {
        "epsilon" => output,
        "sample" => (sample - alpha * output) / sigma,
        "v_prediction" => alpha * output + sigma * sample,
        _ => throw new ArgumentException($"prediction_type \"{type}\" is not supported; expected one of {string.Join(", ", Types)}"),
    };

    /// <summary>
    /// Imagen's dynamic thresholding (Saharia et al. 2022): per sample, s = clamp(quantile(|x_0|, ratio), 1, maxValue);
    /// x_0 = clamp(x_0, -s, s) / s.
    /// </summary>
    public static Tensor DynamicThreshold(Tensor x0, double ratio, double maxValue)
    {
        using var scope = NewDisposeScope();
        long batch = x0.shape[0];
        var flat = x0.reshape(batch, -1);
        var q = tensor(ratio, flat.dtype, flat.device);
        var s = flat.abs().quantile(q, dim: 1).clamp(1.0, maxValue).unsqueeze(1);
        var clipped = minimum(maximum(flat, -s), s) / s;
        return clipped.reshape(x0.shape).MoveToOuterDisposeScope();
    }

    /// <summary>The x_0 post-processing DDIM and DDPM apply: dynamic thresholding if set, else clipping if set.</summary>
    public static Tensor ClipX0(Tensor x0, SchedulerConfig config, bool clipSampleDefault)
    {
        if (config.Thresholding == true)
            return DynamicThreshold(x0, config.DynamicThresholdingRatio ?? 0.995, config.SampleMaxValue ?? 1.0);
        if (config.ClipSample ?? clipSampleDefault)
        {
            double r = config.ClipSampleRange ?? 1.0;
            return x0.clamp(-r, r);
        }
        return x0;
    }
}
