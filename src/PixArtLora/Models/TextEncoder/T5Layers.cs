using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

#pragma warning disable IDE1006 // fields carry the Hugging Face names so that state_dict() gives the published keys

/// <summary>Builds parameters without initialising them: weights are read from a checkpoint right after.</summary>
static class T5Init
{
    /// <summary>An uninitialised frozen parameter owned by its module, outside any dispose scope (a module built
    /// inside a scope must not lose its weights when the scope ends).</summary>
    public static Parameter NewParameter(long[] shape, Device device, ScalarType dtype)
    {
        var p = new Parameter(empty(shape, dtype, device), requires_grad: false);
        p.DetachFromDisposeScope();
        return p;
    }

    public static Linear Linear(long inFeatures, long outFeatures, Device device, ScalarType dtype) =>
        nn.Linear(NewParameter(new[] { outFeatures, inFeatures }, device, dtype));

    public static T5Embedding Embedding(long count, long dim, Device device, ScalarType dtype) => new(count, dim, device, dtype);
}

/// <summary>
/// A lookup table with one <c>weight</c> parameter [count, dim], like nn.Embedding. TorchSharp's native
/// Embedding allocates and initialises its own weight even when built from a given tensor (and then
/// reports that one in state_dict), so it cannot be filled in place; this one holds exactly the tensor given.
/// </summary>
public sealed class T5Embedding : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;

    public T5Embedding(long count, long dim, Device device, ScalarType dtype) : base("Embedding")
    {
        weight = T5Init.NewParameter(new[] { count, dim }, device, dtype);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var shape = ids.shape.Append(weight.shape[1]).ToArray();
        return weight.index_select(0, ids.reshape(-1)).reshape(shape).MoveToOuterDisposeScope();
    }
}

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

/// <summary>
/// The feed-forward (transformers' <c>T5DenseGatedActDense</c> for "gated-*" configs: act(wi_0 x) ⊙ wi_1 x → wo;
/// <c>T5DenseActDense</c> otherwise: act(wi x) → wo). The input of wo is cast to wo's dtype, which matters when
/// wo is kept in float32 beside half-precision weights.
/// </summary>
public sealed class T5DenseReluDense : nn.Module<Tensor, Tensor>
{
    readonly Linear? wi, wi_0, wi_1;
    readonly Linear wo;
    readonly string _activation;

    public T5DenseReluDense(T5Config config, Device device, ScalarType dtype, ScalarType woDtype) : base(config.IsGatedAct ? "T5DenseGatedActDense" : "T5DenseActDense")
    {
        _activation = config.ActivationName;
        if (config.IsGatedAct)
        {
            wi_0 = T5Init.Linear(config.DModel, config.DFf, device, dtype);
            wi_1 = T5Init.Linear(config.DModel, config.DFf, device, dtype);
        }
        else
        {
            wi = T5Init.Linear(config.DModel, config.DFf, device, dtype);
        }
        wo = T5Init.Linear(config.DFf, config.DModel, device, woDtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hiddenStates)
    {
        using var scope = NewDisposeScope();
        var hidden = wi is not null
            ? T5Activations.Apply(_activation, wi.forward(hiddenStates))
            : T5Activations.Apply(_activation, wi_0!.forward(hiddenStates)) * wi_1!.forward(hiddenStates);
        if (hidden.dtype != wo.weight.dtype) hidden = hidden.to(wo.weight.dtype);
        return wo.forward(hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm residual feed-forward sub-layer (transformers' <c>T5LayerFF</c>).</summary>
public sealed class T5LayerFF : nn.Module<Tensor, Tensor>
{
    readonly T5DenseReluDense DenseReluDense;
    readonly T5LayerNorm layer_norm;

    public T5LayerFF(T5Config config, Device device, ScalarType dtype, ScalarType woDtype) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseReluDense(config, device, dtype, woDtype);
        layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hiddenStates)
    {
        using var scope = NewDisposeScope();
        var forwarded = DenseReluDense.forward(layer_norm.forward(hiddenStates));
        return (hiddenStates + forwarded).MoveToOuterDisposeScope();
    }
}

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
