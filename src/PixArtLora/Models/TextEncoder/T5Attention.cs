using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

#pragma warning disable IDE1006 // fields carry the Hugging Face names so that state_dict() gives the published keys

/// <summary>
/// T5 self-attention (transformers' <c>T5Attention</c>, encoder path). Unlike most transformers there is no
/// 1/sqrt(d_kv) scaling of the scores (Mesh TensorFlow folds it into the initialisation), and positions enter
/// only as a learned per-head bias over relative-position buckets, which block 0 owns and all blocks share.
/// </summary>
public sealed class T5Attention : nn.Module
{
    readonly Linear q, k, v, o;
    readonly T5Embedding? relative_attention_bias;
    readonly T5Config _config;

    public T5Attention(T5Config config, bool hasRelativeAttentionBias, Device device, ScalarType dtype) : base(nameof(T5Attention))
    {
        _config = config;
        q = T5Init.Linear(config.DModel, config.InnerDim, device, dtype);
        k = T5Init.Linear(config.DModel, config.InnerDim, device, dtype);
        v = T5Init.Linear(config.DModel, config.InnerDim, device, dtype);
        o = T5Init.Linear(config.InnerDim, config.DModel, device, dtype);
        if (hasRelativeAttentionBias)
            relative_attention_bias = T5Init.Embedding(config.RelativeAttentionNumBuckets, config.NumHeads, device, dtype);
        RegisterComponents();
    }

    public bool HasRelativeAttentionBias => relative_attention_bias is not null;

    /// <summary>
    /// The position bias [1, heads, queryLength, keyLength] (transformers' <c>compute_bias</c>, bidirectional),
    /// in the weights' dtype; the padding mask is added by the caller.
    /// </summary>
    public Tensor ComputeBias(long queryLength, long keyLength)
    {
        if (relative_attention_bias is null) throw new InvalidOperationException("only the first block's attention owns relative_attention_bias");
        using var scope = NewDisposeScope();
        var device = relative_attention_bias.Weight.device;
        var context = arange(queryLength, int64, device).unsqueeze(1);
        var memory = arange(keyLength, int64, device).unsqueeze(0);
        var buckets = T5RelativePosition.Bucket(memory - context, bidirectional: true,
            _config.RelativeAttentionNumBuckets, _config.RelativeAttentionMaxDistance);
        var values = relative_attention_bias.forward(buckets); // [q, k, heads]
        return values.permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <param name="hiddenStates">[B, L, d_model]</param>
    /// <param name="positionBias">[1 or B, heads, L, L]: relative-position bias plus the additive padding mask.</param>
    public Tensor forward(Tensor hiddenStates, Tensor positionBias)
    {
        using var scope = NewDisposeScope();
        long batch = hiddenStates.shape[0], length = hiddenStates.shape[1];
        Tensor Heads(Linear proj) => proj.forward(hiddenStates).view(batch, -1, _config.NumHeads, _config.DKv).transpose(1, 2);
        var query = Heads(q);
        var key = Heads(k);
        var value = Heads(v);
        var scores = matmul(query, key.transpose(3, 2));
        scores = scores + positionBias.to(scores.dtype);
        // Softmax in float32 whatever the compute dtype, as the reference does.
        var weights = scores.to(float32).softmax(-1).to(scores.dtype);
        var output = matmul(weights, value).transpose(1, 2).contiguous().view(batch, length, _config.InnerDim);
        return o.forward(output).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm residual self-attention sub-layer (transformers' <c>T5LayerSelfAttention</c>).</summary>
public sealed class T5LayerSelfAttention : nn.Module
{
    readonly T5Attention SelfAttention;
    readonly T5LayerNorm layer_norm;

    public T5LayerSelfAttention(T5Config config, bool hasRelativeAttentionBias, Device device, ScalarType dtype) : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(config, hasRelativeAttentionBias, device, dtype);
        layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    public T5Attention Attention => SelfAttention;

    public Tensor forward(Tensor hiddenStates, Tensor positionBias)
    {
        using var scope = NewDisposeScope();
        var attended = SelfAttention.forward(layer_norm.forward(hiddenStates), positionBias);
        return (hiddenStates + attended).MoveToOuterDisposeScope();
    }
}
