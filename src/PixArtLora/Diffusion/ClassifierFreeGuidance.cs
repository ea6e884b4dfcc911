using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Diffusion;

/// <summary>How the conditional and unconditional predictions are combined.</summary>
public enum GuidanceMode
{
    /// <summary>
    /// The conventional guidance (diffusers' PixArt pipelines): every latent eps channel is guided,
    /// eps = uncond + scale · (cond - uncond); learned-variance channels, if any, are taken from the conditional
    /// prediction. The default.
    /// </summary>
    AllChannels,

    /// <summary>
    /// The official PixArt code's forward_with_cfg (inherited from DiT): only output channels 0..2 are guided, and the
    /// remaining channels (eps channel 3 and the variance) pass through unguided, conditional rows keeping the
    /// conditional values and unconditional rows the unconditional ones. The sampler state is the latent batch
    /// repeated twice (as scripts/inference.py does); the model always sees the first half twice, and the result is the
    /// first half. Use it to reproduce official PixArt samples exactly.
    /// </summary>
    Official,
}

/// <summary>Classifier-free guidance (Ho &amp; Salimans 2022) settings: scale and channel convention.</summary>
public sealed record ClassifierFreeGuidance(double Scale, GuidanceMode Mode = GuidanceMode.AllChannels)
{
    /// <summary>Channels the official convention guides (DiT's eps[:, :3], kept as a literal in PixArt).</summary>
    public const int OfficialGuidedChannels = 3;

    /// <summary>
    /// Combines a model output over the doubled batch [cond rows; uncond rows] ([2B, C or 2C, ...]).
    /// AllChannels returns [B, ...]; Official returns the full [2B, ...] output with both halves' first three
    /// channels replaced by the guided ones.
    /// </summary>
    public Tensor Combine(Tensor doubledOutput, long latentChannels)
    {
        if (doubledOutput.shape[0] % 2 != 0)
            throw new ArgumentException($"guidance needs an even batch [cond; uncond]; got {doubledOutput.shape[0]} rows");
        using var scope = NewDisposeScope();
        var halves = doubledOutput.chunk(2, 0);
        Tensor cond = halves[0], uncond = halves[1];
        if (Mode == GuidanceMode.AllChannels)
        {
            var epsC = cond.narrow(1, 0, latentChannels);
            var guided = uncond.narrow(1, 0, latentChannels) + Scale * (epsC - uncond.narrow(1, 0, latentChannels));
            var result = cond.shape[1] == latentChannels ? guided : cat(new[] { guided, cond.narrow(1, latentChannels, cond.shape[1] - latentChannels) }, 1);
            return result.MoveToOuterDisposeScope();
        }
        int g = (int)Math.Min(OfficialGuidedChannels, doubledOutput.shape[1]);
        var halfEps = uncond.narrow(1, 0, g) + Scale * (cond.narrow(1, 0, g) - uncond.narrow(1, 0, g));
        var eps = cat(new[] { halfEps, halfEps }, 0);
        var rest = doubledOutput.narrow(1, g, doubledOutput.shape[1] - g);
        return cat(new[] { eps, rest }, 1).MoveToOuterDisposeScope();
    }
}
