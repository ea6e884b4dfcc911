using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace PixArtLora.Tests.Lora;

// A small module tree with the diffusers PixArt module names (transformer_blocks.N.attn1.to_q, ff.net.0.proj,
// adaln_single.linear, caption_projection.linear_1, proj_out, …), so the LoRA code can be tested on names and shapes
// like the real model's without depending on it. Not the PixArt math: just enough to make every Linear matter.

sealed class TinyAttention : Module<Tensor, Tensor, Tensor>
{
    readonly Linear to_q, to_k, to_v;
    readonly ModuleList<Module<Tensor, Tensor>> to_out;

    public TinyAttention(long dim, long contextDim) : base("Attention")
    {
        to_q = Linear(dim, dim);
        to_k = Linear(contextDim, dim);
        to_v = Linear(contextDim, dim);
        to_out = new ModuleList<Module<Tensor, Tensor>>(Linear(dim, dim), Dropout(0.0));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor context)
    {
        var q = to_q.call(x);
        var k = to_k.call(context);
        var v = to_v.call(context);
        var attn = q.matmul(k.transpose(1, 2)).div(Math.Sqrt(q.shape[^1])).softmax(-1);
        var h = attn.matmul(v);
        foreach (var m in to_out) h = m.call(h);
        return h;
    }
}

sealed class TinyGeluProj : Module<Tensor, Tensor>
{
    readonly Linear proj;
    public TinyGeluProj(long dim, long hidden) : base("GELU") { proj = Linear(dim, hidden); RegisterComponents(); }
    public override Tensor forward(Tensor x) => functional.gelu(proj.call(x));
}

sealed class TinyFeedForward : Module<Tensor, Tensor>
{
    readonly Sequential net;
    public TinyFeedForward(long dim) : base("FeedForward")
    {
        net = Sequential(("0", new TinyGeluProj(dim, 2 * dim)), ("1", Dropout(0.0)), ("2", Linear(2 * dim, dim)));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => net.call(x);
}

sealed class TinyBlock : Module<Tensor, Tensor, Tensor>
{
    readonly TinyAttention attn1, attn2;
    readonly TinyFeedForward ff;

    public TinyBlock(long dim) : base("BasicTransformerBlock")
    {
        attn1 = new TinyAttention(dim, dim);
        attn2 = new TinyAttention(dim, dim);
        ff = new TinyFeedForward(dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor context)
    {
        x = x + attn1.call(x, x);
        x = x + attn2.call(x, context);
        return x + ff.call(x);
    }
}

sealed class TinyTimestepEmbedding : Module<Tensor, Tensor>
{
    readonly Linear linear_1, linear_2;
    public TinyTimestepEmbedding(long inDim, long dim) : base("TimestepEmbedding")
    {
        linear_1 = Linear(inDim, dim);
        linear_2 = Linear(dim, dim);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => linear_2.call(functional.silu(linear_1.call(x)));
}

sealed class TinyEmbeddings : Module<Tensor, Tensor>
{
    readonly TinyTimestepEmbedding timestep_embedder;
    public TinyEmbeddings(long inDim, long dim) : base("Embeddings") { timestep_embedder = new TinyTimestepEmbedding(inDim, dim); RegisterComponents(); }
    public override Tensor forward(Tensor x) => timestep_embedder.call(x);
}

sealed class TinyAdaLayerNormSingle : Module<Tensor, Tensor>
{
    readonly TinyEmbeddings emb;
    readonly Linear linear;
    public TinyAdaLayerNormSingle(long inDim, long dim) : base("AdaLayerNormSingle")
    {
        emb = new TinyEmbeddings(inDim, dim);
        linear = Linear(dim, dim);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => linear.call(functional.silu(emb.call(x)));
}

sealed class TinyCaptionProjection : Module<Tensor, Tensor>
{
    readonly Linear linear_1, linear_2;
    public TinyCaptionProjection(long inDim, long dim) : base("PixArtAlphaTextProjection")
    {
        linear_1 = Linear(inDim, dim);
        linear_2 = Linear(dim, dim);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => linear_2.call(functional.gelu(linear_1.call(x)));
}

/// <summary>Holds a Conv2d named <c>pos_embed.proj</c>, which all-linear's <c>proj</c> pattern hits: it must never be adapted.</summary>
sealed class TinyPatchEmbed : Module
{
    readonly Conv2d proj;
    public TinyPatchEmbed() : base("PatchEmbed") { proj = Conv2d(1, 1, 1); RegisterComponents(); }
}

/// <summary>forward(x [B, L, dim], caption [B, M, captionDim]) → [B, L, outDim].</summary>
sealed class TinyPixArtLikeModel : Module<Tensor, Tensor, Tensor>
{
    readonly ModuleList<TinyBlock> transformer_blocks;
    readonly TinyAdaLayerNormSingle adaln_single;
    readonly TinyCaptionProjection caption_projection;
    readonly Linear proj_out;
    readonly TinyPatchEmbed pos_embed;

    public long Dim { get; }
    public long CaptionDim { get; }

    public TinyPixArtLikeModel(long dim = 8, long captionDim = 6, int blocks = 2, long outDim = 5, long seed = 7) : base("TinyPixArtLikeModel")
    {
        Dim = dim;
        CaptionDim = captionDim;
        transformer_blocks = new ModuleList<TinyBlock>(Enumerable.Range(0, blocks).Select(_ => new TinyBlock(dim)).ToArray());
        adaln_single = new TinyAdaLayerNormSingle(dim, dim);
        caption_projection = new TinyCaptionProjection(captionDim, dim);
        proj_out = Linear(dim, outDim);
        pos_embed = new TinyPatchEmbed();
        RegisterComponents();
        // Weights from a private generator: tests run in parallel, and the global RNG would give two "identical" models different weights.
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var p in parameters())
        {
            using var r = randn(p.shape, generator: g);
            p.copy_(r.mul(0.5 / Math.Sqrt(p.shape[^1])));
        }
    }

    public override Tensor forward(Tensor x, Tensor caption)
    {
        using var scope = NewDisposeScope();
        var context = caption_projection.call(caption);
        var cond = adaln_single.call(x.mean(new long[] { 1 }, keepdim: true));
        var h = x + cond;
        foreach (var block in transformer_blocks) h = block.call(h, context);
        return proj_out.call(h).MoveToOuterDisposeScope();
    }

    /// <summary>Random inputs of the right shapes.</summary>
    public (Tensor X, Tensor Caption) Inputs(long seed = 11, int batch = 2, int tokens = 4, int captionTokens = 3)
    {
        using var g = new Generator((ulong)seed);
        return (randn(new long[] { batch, tokens, Dim }, generator: g), randn(new long[] { batch, captionTokens, CaptionDim }, generator: g));
    }
}
