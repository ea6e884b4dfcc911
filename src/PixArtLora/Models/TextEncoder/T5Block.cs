using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

#pragma warning disable IDE1006 // fields carry the Hugging Face names so that state_dict() gives the published keys

/// <summary>
/// One encoder block (transformers' <c>T5Block</c> without cross-attention): <c>layer.0</c> self-attention,
/// <c>layer.1</c> feed-forward. In float16, infinities are clamped after each sub-layer as the reference does.
/// </summary>
public sealed class T5Block : nn.Module
{
    readonly ModuleList<nn.Module> layer;

    public T5Block(T5Config config, bool hasRelativeAttentionBias, Device device, ScalarType dtype, ScalarType woDtype) : base(nameof(T5Block))
    {
        layer = new ModuleList<nn.Module>(
            new T5LayerSelfAttention(config, hasRelativeAttentionBias, device, dtype),
            new T5LayerFF(config, device, dtype, woDtype));
        RegisterComponents();
    }

    public T5LayerSelfAttention SelfAttentionLayer => (T5LayerSelfAttention)layer[0];
    public T5LayerFF FeedForwardLayer => (T5LayerFF)layer[1];

    public Tensor forward(Tensor hiddenStates, Tensor positionBias)
    {
        using var scope = NewDisposeScope();
        var h = ClampFloat16(SelfAttentionLayer.forward(hiddenStates, positionBias));
        h = ClampFloat16(FeedForwardLayer.forward(h));
        return h.MoveToOuterDisposeScope();
    }

    static Tensor ClampFloat16(Tensor h)
    {
        if (h.dtype != ScalarType.Float16) return h;
        double max = 65504.0;
        double limit = h.isinf().any().item<bool>() ? max - 1000 : max;
        return h.clamp(-limit, limit);
    }
}
