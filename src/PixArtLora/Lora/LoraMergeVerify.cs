using PixArtLora.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Lora;

/// <summary>
/// Outcome of <see cref="LoraMergeVerify.Verify"/>: how far the merged model's output is from base + adapters applied
/// un-merged, next to how much the adapters change the output at all (so a tiny difference means something).
/// </summary>
public sealed record LoraMergeVerification(double MaxAbsDifference, double MaxAbsAdapterEffect, double MaxAbsOutput, long[] LatentShape);

/// <summary><c>lora merge --verify</c>: runs the base model with the adapters and the merged model on one random input.</summary>
public static class LoraMergeVerify
{
    /// <summary>
    /// Loads <paramref name="baseFolder"/> with <paramref name="loras"/> attached (un-merged) and <paramref name="mergedFolder"/>,
    /// both computing in fp32 on <paramref name="device"/>, and compares their outputs on a random latent (at most 32×32),
    /// caption and timestep drawn from <paramref name="seed"/>.
    /// </summary>
    public static LoraMergeVerification Verify(string baseFolder, IReadOnlyList<LoraMergeSource> loras, string mergedFolder, Device? device = null,
        long seed = 0, Func<Registry.HubComponent, string>? fetch = null)
    {
        device ??= CPU;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor withAdapters, plain;
        long[] latentShape;
        (Tensor X, Tensor Caption, Tensor T, Tensor? Res, Tensor? Ar) inputs;
        using (var model = PixArtTransformer2DModel.FromPretrained(TransformerFolder.Resolve(baseFolder, fetch), device))
        {
            model.eval();
            inputs = RandomInputs(model.Config, device, seed);
            latentShape = inputs.X.shape;
            plain = Run(model, inputs);
            using var net = LoraNetwork.Attach(model);
            var catalog = net.Catalog(TransformerFolder.Describe(TransformerFolder.Resolve(baseFolder, fetch)));
            for (int i = 0; i < loras.Count; i++)
            {
                using var w = LoraFile.Read(loras[i].Path, catalog);
                net.LoadAdapter($"lora{i}", w, loras[i].Strength, device: device);
            }
            withAdapters = Run(model, inputs);
            net.Unload();
        }
        Tensor merged;
        using (var model = PixArtTransformer2DModel.FromPretrained(TransformerFolder.Resolve(mergedFolder), device))
        {
            model.eval();
            merged = Run(model, inputs);
        }
        return new LoraMergeVerification(
            (withAdapters - merged).abs().max().item<float>(),
            (withAdapters - plain).abs().max().item<float>(),
            withAdapters.abs().max().item<float>(),
            latentShape);
    }

    static Tensor Run(PixArtTransformer2DModel model, (Tensor X, Tensor Caption, Tensor T, Tensor? Res, Tensor? Ar) i) =>
        model.forward(i.X, i.Caption, i.T, resolution: i.Res, aspectRatio: i.Ar);

    static (Tensor, Tensor, Tensor, Tensor?, Tensor?) RandomInputs(PixArtTransformerConfig config, Device device, long seed)
    {
        using var g = new Generator((ulong)seed);
        int p = config.PatchSize;
        long side = Math.Max(p, Math.Min(config.SampleSize, 32) / p * p);
        var x = randn(new long[] { 1, config.InChannels, side, side }, generator: g).to(device);
        long width = config.CaptionChannels ?? config.CrossAttentionDim ?? config.InnerDim;
        var caption = randn(new long[] { 1, 8, width }, generator: g).to(device);
        var t = tensor(new float[] { 500 }, device: device);
        Tensor? res = null, ar = null;
        if (config.ResolvedUseAdditionalConditions)
        {
            res = tensor(new float[] { side * 8, side * 8 }, device: device).reshape(1, 2);
            ar = tensor(new float[] { 1 }, device: device).reshape(1, 1);
        }
        return (x, caption, t, res, ar);
    }
}
