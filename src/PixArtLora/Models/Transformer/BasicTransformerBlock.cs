using PixArtLora.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// diffusers' <c>BasicTransformerBlock</c> with <c>norm_type = "ada_norm_single"</c> (attention.py), i.e. one PixArt
/// block: modulated self-attention, cross-attention to the caption, modulated feed-forward.
/// </summary>
/// <remarks>
/// The six modulation vectors (shift/scale/gate for attention and for the MLP) are this block's
/// <c>scale_shift_table</c> plus the model-wide adaLN-single output. Cross-attention has no norm and no gate in PixArt
/// (PixArtMS.py), and <c>norm2</c> is the norm in front of the feed-forward, not of the cross-attention.
/// </remarks>
public sealed class BasicTransformerBlock : nn.Module
{
#pragma warning disable IDE1006 // diffusers key names
    public readonly LayerNorm norm1;
    public readonly Attention attn1;
    public readonly LayerNorm norm2;
    public readonly Attention? attn2;
    public readonly FeedForward ff;
    public Parameter scale_shift_table;
#pragma warning restore IDE1006

    public int Dim { get; }

    public BasicTransformerBlock(PixArtTransformerConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(BasicTransformerBlock))
    {
        int dim = config.InnerDim;
        Dim = dim;
        norm1 = nn.LayerNorm(dim, config.NormEps, config.NormElementwiseAffine, device: device, dtype: dtype);
        attn1 = new Attention(dim, null, config.NumAttentionHeads, config.AttentionHeadDim, config.AttentionBias, config.Dropout, device, dtype);
        norm2 = nn.LayerNorm(dim, config.NormEps, config.NormElementwiseAffine, device: device, dtype: dtype);
        if (config.CrossAttentionDim is int contextDim)
            attn2 = new Attention(dim, contextDim, config.NumAttentionHeads, config.AttentionHeadDim, config.AttentionBias, config.Dropout, device, dtype);
        ff = new FeedForward(dim, config.ActivationFn, config.Dropout, device: device, dtype: dtype);
        scale_shift_table = new Parameter(torch.randn(new long[] { 6, dim }, dtype: dtype, device: device).div_(Math.Sqrt(dim)));
        RegisterComponents();
    }

    /// <summary>
    /// <paramref name="hiddenStates"/> [B, N, D]; <paramref name="context"/> [B, L, D] projected caption;
    /// <paramref name="contextBias"/> [B, 1, L] additive mask or null; <paramref name="modulation"/> [B, 6D] from adaLN-single.
    /// </summary>
    public Tensor forward(Tensor hiddenStates, Tensor? context, Tensor? contextBias, Tensor modulation)
    {
        using var scope = NewDisposeScope();
        long batch = hiddenStates.shape[0];
        var mods = (scale_shift_table.unsqueeze(0) + modulation.reshape(batch, 6, -1)).chunk(6, dim: 1);
        Tensor shiftMsa = mods[0], scaleMsa = mods[1], gateMsa = mods[2], shiftMlp = mods[3], scaleMlp = mods[4], gateMlp = mods[5];

        var normed = DtypeBoundary.Call(norm1, hiddenStates) * (1 + scaleMsa) + shiftMsa;
        var x = gateMsa * attn1.forward(normed) + hiddenStates;

        if (attn2 is not null)
            x = attn2.forward(x, context, contextBias) + x;

        normed = DtypeBoundary.Call(norm2, x) * (1 + scaleMlp) + shiftMlp;
        x = gateMlp * ff.call(normed) + x;
        return x.MoveToOuterDisposeScope();
    }
}
