using PixArtLora.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

/// <summary>Random but seeded inputs for a transformer config: latents, caption features with padding, timesteps, micro-conditions.</summary>
public sealed record TransformerInputs(Tensor Latents, Tensor Captions, Tensor Mask, Tensor Timestep, Tensor? Resolution, Tensor? AspectRatio)
{
    public static TransformerInputs For(PixArtTransformerConfig config, long batch = 2, long height = 8, long width = 12, long tokens = 7, long seed = 7)
    {
        var g = new Generator((ulong)seed);
        var latents = randn(new[] { batch, (long)config.InChannels, height, width }, generator: g);
        var captions = randn(new[] { batch, tokens, (long)(config.CaptionChannels ?? config.InnerDim) }, generator: g);
        var mask = ones(batch, tokens, dtype: int64);
        mask[batch - 1].narrow(0, tokens - 3, 3).fill_(0);   // the last caption is shorter (3 padding tokens)
        var timestep = tensor(Enumerable.Range(0, (int)batch).Select(i => i == 0 ? 999f : 17.5f + 100 * i).ToArray());
        Tensor? resolution = null, aspect = null;
        if (config.ResolvedUseAdditionalConditions)
        {
            resolution = tensor(Enumerable.Repeat(new float[] { height * 8, width * 8 }, (int)batch).SelectMany(x => x).ToArray(), new[] { batch, 2L });
            aspect = full(new[] { batch, 1L }, (float)height / width);
        }
        return new TransformerInputs(latents, captions, mask, timestep, resolution, aspect);
    }

    public Tensor Run(PixArtTransformer2DModel model) =>
        model.forward(Latents, Captions, Timestep, Mask, Resolution, AspectRatio);
}
