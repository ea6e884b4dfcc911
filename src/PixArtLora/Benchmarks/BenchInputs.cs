using PixArtLora.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>
/// Seeded random transformer inputs shaped like a training or sampling batch: float32 latents and T5-width caption
/// features, a caption mask with half the tokens padding (real captions are shorter than the padded length; the
/// attention cost is the same), timesteps, and α's micro-conditions when the config uses them.
/// </summary>
public sealed class BenchInputs : IDisposable
{
    public Tensor Latents { get; }
    public Tensor Captions { get; }
    public Tensor Mask { get; }
    public Tensor Timestep { get; }
    public Tensor? Resolution { get; }
    public Tensor? AspectRatio { get; }

    BenchInputs(Tensor latents, Tensor captions, Tensor mask, Tensor timestep, Tensor? resolution, Tensor? aspectRatio)
    {
        Latents = latents; Captions = captions; Mask = mask; Timestep = timestep; Resolution = resolution; AspectRatio = aspectRatio;
    }

    public static BenchInputs Create(PixArtTransformerConfig config, long batch, long latentHeight, long latentWidth, long captionTokens, Device device, long seed)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        var latents = randn(new[] { batch, (long)config.InChannels, latentHeight, latentWidth }, generator: g);
        var captions = randn(new[] { batch, captionTokens, (long)(config.CaptionChannels ?? config.CrossAttentionDim ?? config.InnerDim) }, generator: g);
        var mask = ones(batch, captionTokens, dtype: int64);
        long padding = captionTokens / 2;
        if (padding > 0) mask.narrow(1, captionTokens - padding, padding).fill_(0);
        var timestep = randint(0, 1000, new[] { batch }, generator: g).to(float32);
        Tensor? resolution = null, aspect = null;
        if (config.ResolvedUseAdditionalConditions)
        {
            resolution = full(new[] { batch, 2L }, (float)(latentHeight * 8)).contiguous();
            resolution.select(1, 1).fill_((float)(latentWidth * 8));
            aspect = full(new[] { batch, 1L }, (float)latentHeight / latentWidth);
        }
        Tensor Keep(Tensor t) => t.to(device).MoveToOuterDisposeScope();
        return new BenchInputs(Keep(latents), Keep(captions), Keep(mask), Keep(timestep),
            resolution is null ? null : Keep(resolution), aspect is null ? null : Keep(aspect));
    }

    /// <summary>One forward of <paramref name="model"/> on these inputs.</summary>
    public Tensor Run(PixArtTransformer2DModel model) =>
        model.forward(Latents, Captions, Timestep, Mask, Resolution, AspectRatio);

    public void Dispose()
    {
        Latents.Dispose(); Captions.Dispose(); Mask.Dispose(); Timestep.Dispose();
        Resolution?.Dispose(); AspectRatio?.Dispose();
    }
}
