using PixArtLora.Lora;
using PixArtLora.Models.Transformer;

namespace PixArtLora.Benchmarks;

/// <summary>What a benchmark step computes.</summary>
public enum BenchMode
{
    /// <summary>Forward only, no autograd (inference: with CFG this is a batch of 2).</summary>
    Forward,
    /// <summary>Forward + backward with the base frozen and rank-r adapters on the attention projections trainable.</summary>
    Lora,
    /// <summary>Forward + backward with every transformer parameter trainable (no optimizer step).</summary>
    Full,
}

/// <summary>
/// Floating-point operations of one step, split by where they happen. Matrix products only: norms, activations,
/// softmax, modulation and residual adds are a few operations per element and are not counted (the usual MFU
/// convention). One multiply-add is 2 FLOPs.
/// </summary>
/// <param name="Forward">The forward pass.</param>
/// <param name="InputGradients">Backward products that give the gradient of a linear layer's input (dL/dx = dL/dy · W).</param>
/// <param name="WeightGradients">Backward products that give the gradient of a trainable weight (dL/dW = dL/dyᵀ · x).</param>
/// <param name="AttentionBackward">Backward of QKᵀ and AV: two products each, i.e. twice their forward.</param>
/// <param name="Recompute">The blocks' forward run again in backward by gradient checkpointing.</param>
public sealed record FlopCount(double Forward, double InputGradients, double WeightGradients, double AttentionBackward, double Recompute)
{
    public double Backward => InputGradients + WeightGradients + AttentionBackward;

    /// <summary>Everything the step computes, recomputation included.</summary>
    public double Total => Forward + Backward + Recompute;
}

/// <summary>
/// The analytic FLOP count of <see cref="PixArtTransformer2DModel"/> for a batch of B latents of h × w, i.e.
/// N = (h/p)(w/p) image tokens of width D = heads × head_dim, and L caption tokens.
/// </summary>
/// <remarks>
/// <para>A linear layer of in → out features applied to T tokens costs 2·T·in·out. Attention over M keys costs, summed over
/// the heads (each of width d, h·d = D), 2·N·M·D for QKᵀ and 2·N·M·D for AV. Per sample and block:</para>
/// <list type="bullet">
/// <item>self-attention: projections q, k, v, out 4 · 2·N·D², products 4·N²·D;</item>
/// <item>cross-attention: q, out 2 · 2·N·D², k, v 2 · 2·L·D_c·D (D_c = cross_attention_dim), products 4·N·L·D;</item>
/// <item>feed-forward D → 4D → D: 16·N·D².</item>
/// </list>
/// <para>Outside the blocks: patch embedding 2·N·(C·p²)·D, caption projection 2·L·(C_t·D + D²), timestep (and α's
/// size) embeddings 2·(256·D + D²) each, adaLN-single 2·D·6D, proj_out 2·N·D·(p²·C_out). Σ-512 at 512 px
/// (N = 1024, L = 300, D = 1152, 28 blocks): F ≈ 1.29 TFLOP per image.</para>
/// <para>Backward: every product is differentiated into two of the same size, one for the input and one for the weight,
/// and only those autograd actually needs are counted. With every parameter trainable that is ≈ 2F, so a training
/// step ≈ 3F; with the base frozen (LoRA) the weight gradients of the base and the input gradients of layers fed by
/// data (patch embedding, caption projection, cross-attention k/v, timestep MLP) are skipped, so ≈ 2F. Gradient
/// checkpointing recomputes each block's forward once more: + F_blocks.</para>
/// </remarks>
public static class TransformerFlops
{
    /// <summary>
    /// Projections that <see cref="BenchMode.Lora"/> adapts in every attention (self and cross): the LoRA module's
    /// default target set, <see cref="LoraTargets.Attention"/>.
    /// </summary>
    public static IReadOnlyList<string> AdapterTargets => LoraTargets.Attention.Patterns;

    /// <summary>
    /// FLOPs of one step of <paramref name="mode"/> on a batch of <paramref name="batch"/> latents of
    /// <paramref name="latentHeight"/> × <paramref name="latentWidth"/> with <paramref name="captionTokens"/> caption tokens.
    /// <paramref name="loraRank"/>: rank of the adapters on <see cref="AdapterTargets"/> in <see cref="BenchMode.Lora"/>.
    /// </summary>
    public static FlopCount Count(PixArtTransformerConfig config, long batch, long latentHeight, long latentWidth, long captionTokens,
        BenchMode mode, bool gradientCheckpointing = false, int loraRank = 16)
    {
        var counter = new Counter(mode, gradientCheckpointing && mode != BenchMode.Forward, loraRank);
        int p = config.PatchSize;
        double d = config.InnerDim;
        double n = batch * (latentHeight / p) * (latentWidth / p);   // image tokens in the batch
        double l = batch * captionTokens;                             // caption tokens in the batch
        double b = batch;

        // Patch embedding (a linear map of each p×p patch) is fed by the latents, which need no gradient.
        bool x = counter.Linear(n, config.InChannels * p * p, d, inputNeedsGrad: false);

        // adaLN-single: sinusoidal projection → timestep MLP (and α's two size MLPs of width D/3) → SiLU → 6D.
        const int proj = CombinedTimestepSizeEmbeddings.ProjectionChannels;
        bool t = counter.Linear(b, d, d, counter.Linear(b, proj, d, inputNeedsGrad: false));
        if (config.ResolvedUseAdditionalConditions)
            for (int i = 0; i < 2; i++)
                counter.Linear(b, d / 3, d / 3, counter.Linear(b, proj, d / 3, inputNeedsGrad: false));
        bool modulation = counter.Linear(b, d, 6 * d, t);

        // Caption projection C_t → D → D, fed by T5 features.
        double contextDim = config.CrossAttentionDim ?? d;
        bool context = false;
        if (config.CaptionChannels is int captionChannels)
            context = counter.Linear(l, d, d, counter.Linear(l, captionChannels, d, inputNeedsGrad: false));

        for (int block = 0; block < config.NumLayers; block++)
        {
            counter.InBlock = true;
            // Self-attention on the modulated norm of x.
            bool normed = x || modulation;
            bool q = counter.Projection(n, d, d, normed), k = counter.Projection(n, d, d, normed), v = counter.Projection(n, d, d, normed);
            bool attended = counter.Attention(b, n / b, n / b, d, q || k || v);
            x = counter.Projection(n, d, d, attended) || x || modulation;
            if (config.CrossAttentionDim is not null)
            {
                q = counter.Projection(n, d, d, x);
                k = counter.Projection(l, contextDim, d, context);
                v = counter.Projection(l, contextDim, d, context);
                attended = counter.Attention(b, n / b, l / b, d, q || k || v);
                x = counter.Projection(n, d, d, attended) || x;
            }
            normed = x || modulation;
            bool hidden = counter.Linear(n, d, 4 * d, normed);
            x = counter.Linear(n, 4 * d, d, hidden) || x || modulation;
            counter.InBlock = false;
        }

        // Final layer: modulated norm (by the embedded timestep) and the projection to p×p patches of C_out channels.
        counter.Linear(n, d, p * p * config.ResolvedOutChannels, x || t);
        return counter.Result;
    }

    /// <summary>Accumulates products and tracks which tensors need gradients, as autograd would.</summary>
    sealed class Counter(BenchMode mode, bool recompute, int loraRank)
    {
        double _forward, _inputGrads, _weightGrads, _attentionBackward, _recompute;
        public bool InBlock;

        bool Backward => mode != BenchMode.Forward;
        bool BaseTrainable => mode == BenchMode.Full;

        public FlopCount Result => new(_forward, _inputGrads, _weightGrads, _attentionBackward, _recompute);

        /// <summary>A linear layer of the model; returns whether its output needs a gradient.</summary>
        public bool Linear(double tokens, double inFeatures, double outFeatures, bool inputNeedsGrad)
            => Product(tokens, inFeatures, outFeatures, inputNeedsGrad, BaseTrainable);

        /// <summary>An attention projection: a linear layer, plus the A (in → r) and B (r → out) adapter products in LoRA mode.</summary>
        public bool Projection(double tokens, double inFeatures, double outFeatures, bool inputNeedsGrad)
        {
            bool output = Product(tokens, inFeatures, outFeatures, inputNeedsGrad, BaseTrainable);
            if (mode != BenchMode.Lora) return output;
            Product(tokens, inFeatures, loraRank, inputNeedsGrad, trainable: true);
            Product(tokens, loraRank, outFeatures, inputNeedsGrad: true, trainable: true);
            return true;
        }

        /// <summary>QKᵀ and AV for <paramref name="queries"/> × <paramref name="keys"/> per sample, summed over heads of total width <paramref name="width"/>.</summary>
        public bool Attention(double batch, double queries, double keys, double width, bool inputsNeedGrad)
        {
            double flops = batch * 2 * (2 * queries * keys * width);
            _forward += flops;
            if (InBlock && recompute) _recompute += flops;
            if (Backward && inputsNeedGrad) _attentionBackward += 2 * flops;
            return inputsNeedGrad;
        }

        bool Product(double tokens, double inFeatures, double outFeatures, bool inputNeedsGrad, bool trainable)
        {
            double flops = 2 * tokens * inFeatures * outFeatures;
            _forward += flops;
            if (InBlock && recompute) _recompute += flops;
            if (Backward && inputNeedsGrad) _inputGrads += flops;
            if (Backward && trainable) _weightGrads += flops;
            return Backward && (inputNeedsGrad || trainable);
        }
    }
}
