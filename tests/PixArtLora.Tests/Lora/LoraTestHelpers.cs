using PixArtLora.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

static class LoraTestHelpers
{
    /// <summary>Gives every B of an adapter random values, so that it actually changes the output (fresh B is zero).</summary>
    public static void RandomizeB(LoraNetwork net, string adapter, long seed = 3, double std = 0.3)
    {
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (_, layer) in net.Layers)
        {
            if (!layer.HasAdapter(adapter)) continue;
            var (_, b) = layer.Factors(adapter);
            using var r = randn(b.weight.shape, generator: g).mul(std);
            b.weight.copy_(r);
        }
    }

    public static Tensor Run(TinyPixArtLikeModel model, (Tensor X, Tensor Caption) inputs)
    {
        using var noGrad = no_grad();
        return model.call(inputs.X, inputs.Caption);
    }

    /// <summary>Bit-level copy of every parameter, by name.</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    public static bool BitEqual(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.detach().cpu().contiguous().bytes.SequenceEqual(b.detach().cpu().contiguous().bytes);
}
