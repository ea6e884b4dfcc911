using PixArtLora.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// diffusers' <c>Attention</c> with <c>AttnProcessor2_0</c> (attention_processor.py), as PixArt's blocks use it:
/// separate <c>to_q</c>, <c>to_k</c>, <c>to_v</c> projections, scaled-dot-product attention over heads, and the output
/// projection <c>to_out.0</c> (followed by dropout <c>to_out.1</c>). Self-attention when no context is given.
/// </summary>
/// <remarks>
/// The projections are typed <c>Module&lt;Tensor, Tensor&gt;</c> so that an adapter can replace them in place
/// (<see cref="ModuleSurgery.Replace"/>) while the plain model keeps diffusers' keys.
/// </remarks>
public sealed class Attention : nn.Module
{
#pragma warning disable IDE1006 // diffusers key names
    public nn.Module<Tensor, Tensor> to_q;
    public nn.Module<Tensor, Tensor> to_k;
    public nn.Module<Tensor, Tensor> to_v;
    public readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
#pragma warning restore IDE1006

    public int Heads { get; }
    public int HeadDim { get; }

    /// <param name="queryDim">Width of the hidden states (and of the output).</param>
    /// <param name="contextDim">Width of the context for cross-attention; null for self-attention.</param>
    /// <param name="heads">Number of attention heads.</param>
    /// <param name="headDim">Width of each head.</param>
    /// <param name="bias">Whether to_q, to_k, to_v have biases (config attention_bias); to_out.0 always has one.</param>
    /// <param name="dropout">Dropout after the output projection (0 in PixArt).</param>
    /// <param name="device">Where the parameters live (torch.META builds nothing).</param>
    /// <param name="dtype">Parameter dtype.</param>
    public Attention(int queryDim, int? contextDim, int heads, int headDim, bool bias, double dropout, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Attention))
    {
        Heads = heads;
        HeadDim = headDim;
        int inner = heads * headDim;
        int kvDim = contextDim ?? queryDim;
        to_q = nn.Linear(queryDim, inner, hasBias: bias, device: device, dtype: dtype);
        to_k = nn.Linear(kvDim, inner, hasBias: bias, device: device, dtype: dtype);
        to_v = nn.Linear(kvDim, inner, hasBias: bias, device: device, dtype: dtype);
        // diffusers: out_bias defaults to True regardless of attention_bias.
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(
            nn.Linear(inner, queryDim, hasBias: true, device: device, dtype: dtype),
            nn.Dropout(dropout));
        RegisterComponents();
    }

    /// <summary>
    /// Attention of <paramref name="hiddenStates"/> [B, N, D] over <paramref name="context"/> [B, L, Dc] (or over
    /// itself when null). <paramref name="bias"/>: additive mask broadcastable to [B, 1, L] (0 keep, −10000 drop).
    /// </summary>
    public Tensor forward(Tensor hiddenStates, Tensor? context = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        long batch = hiddenStates.shape[0];
        var kv = context ?? hiddenStates;
        var q = DtypeBoundary.Call(to_q, hiddenStates);
        var k = DtypeBoundary.Call(to_k, kv);
        var v = DtypeBoundary.Call(to_v, kv);
        // A replaced projection may return another dtype; attention needs one.
        if (k.dtype != q.dtype) k = k.to(q.dtype);
        if (v.dtype != q.dtype) v = v.to(q.dtype);

        q = q.view(batch, -1, Heads, HeadDim).transpose(1, 2);
        k = k.view(batch, -1, Heads, HeadDim).transpose(1, 2);
        v = v.view(batch, -1, Heads, HeadDim).transpose(1, 2);

        // [B, 1, L] -> [B, 1, 1, L]: one row of key biases shared by every head and query
        // (diffusers repeats it per head, which is the same numbers).
        Tensor? mask = null;
        if (bias is not null) mask = (bias.dim() == 3 ? bias.unsqueeze(1) : bias).to(q.dtype);

        var attended = ChunkedAttention.Selected(q)
            ? ChunkedAttention.Apply(q, k, v, mask)                             // bf16 on CPU: GEMM-speed attention
            : nn.functional.scaled_dot_product_attention(q, k, v, mask);   // scale 1/sqrt(head_dim)
        attended = attended.transpose(1, 2).reshape(batch, -1, Heads * HeadDim);
        var output = DtypeBoundary.Call(to_out[0], attended);
        output = to_out[1].call(output);
        return output.MoveToOuterDisposeScope();
    }
}
