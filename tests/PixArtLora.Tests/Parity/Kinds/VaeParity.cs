using PixArtLora.Models.Vae;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// Kind <c>vae</c>: load the AutoencoderKL from the case's <c>model_dir</c>, encode the <c>image</c> input to the
/// posterior (mean, clamped logvar) and decode the <c>latents_in</c> input, untiled, in float32.
/// The debug intermediates the case provides are checked first so a mismatch names the first stage that differs.
/// </summary>
public sealed class VaeParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds { get; } = new[] { "vae" };

    public void Run(ParityCase c)
    {
        string modelDir = c.Json.TryGetProperty("model_dir", out var md) ? md.GetString()! : "vae";
        using var vae = AutoencoderKL.Load(c.PathOf(modelDir), CPU, ScalarType.Float32);

        if (c.Json.TryGetProperty("spatial_scale_factor", out var sf))
            Assert.Equal(sf.GetInt32(), vae.Config.SpatialScaleFactor);

        // Debug tensors this runner knows how to observe, by the name our taps give them.
        var debugByTap = new Dictionary<string, string>
        {
            ["encoder.mid_block"] = "debug.encoder_mid_block_output",
            ["encoder"] = "debug.encoder_output",
            ["post_quant_conv"] = "debug.post_quant_conv_output",
            ["decoder.mid_block"] = "debug.decoder_mid_block_output",
        };
        void Tap(string name, Tensor t)
        {
            if (debugByTap.TryGetValue(name, out var expected) && c.Has(expected)) c.AssertClose(expected, t);
        }

        using var image = c.Tensor("image");
        var moments = vae.EncodeMoments(image, VaeTiling.Off, Tap);
        using var posterior = DiagonalGaussianDistribution.FromMoments(moments);
        c.AssertClose("posterior_mean", posterior.Mean);
        c.AssertClose("posterior_logvar", posterior.LogVar);

        using var latents = c.Tensor("latents_in");
        using var decoded = vae.DecodeCore(latents, VaeTiling.Off, Tap);
        c.AssertClose("decoded", decoded);
    }
}
