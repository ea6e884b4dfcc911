using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>Which kernel computes softmax(QKᵀ/√d + mask)·V.</summary>
public enum AttentionKernel
{
    /// <summary><see cref="Chunked"/> for bf16 on CPU, <see cref="Sdpa"/> otherwise.</summary>
    Auto,
    /// <summary>libtorch's <c>scaled_dot_product_attention</c> (flash kernel on CPU and CUDA).</summary>
    Sdpa,
    /// <summary><see cref="ChunkedAttention"/>: batched GEMMs over groups of heads, probabilities recomputed in backward.</summary>
    Chunked,
}

/// <summary>
/// Scaled-dot-product attention as two batched matrix products per group of heads, with a backward that recomputes
/// the probabilities instead of storing them — a coarse-grained flash attention built from libtorch's GEMMs.
/// </summary>
/// <remarks>
/// Why: on the 2-core reference CPU, libtorch 2.10's flash attention runs at ~60 GFLOP/s in bf16 whatever the shape,
/// while a bf16 GEMM runs at ~300; with PixArt's head width 72 attention was a third of a bf16 block's time.
/// Measured per 512-px block (N = 1024, L = 300, 16 heads, one thread): self-attention forward+backward 216 → 92 ms,
/// cross-attention 67 → 34 ms. In float32 the two are on par, so <see cref="AttentionKernel.Auto"/> keeps SDPA there.
/// Memory: the [B, g, N, M] scores of one group of g heads exist at a time (g chosen so that they stay under
/// <see cref="ScoreBudgetBytes"/>), and backward keeps Q, K, V and the mask — what SDPA keeps — plus, when they fit
/// <see cref="KeptProbabilityBudgetBytes"/>, the bf16 probabilities, so that it need not recompute them.
/// Numerics: the scores come out of the GEMM in the input dtype (bf16 rounds them to 8 bits of mantissa, as the
/// pre-2.0 diffusers attention did); softmax and its backward accumulate in float32 (libtorch's kernels, or
/// <see cref="Bf16SoftmaxBackward"/> for kept probabilities).
/// </remarks>
public static class ChunkedAttention
{
    /// <summary>Process-wide kernel choice (a performance switch like torch.backends' SDPA flags; results agree within rounding).</summary>
    public static AttentionKernel Kernel { get; set; } = AttentionKernel.Auto;

    /// <summary>Most bytes the scores of one group of heads may take (a group is at least one head).</summary>
    public static long ScoreBudgetBytes { get; set; } = 16L << 20;

    /// <summary>
    /// Most bytes the probabilities of one call may take to be kept from forward for backward (bf16 on an AVX-512 CPU,
    /// with gradients needed); above it backward recomputes them group by group. Keeping them saves backward the
    /// recomputed QKᵀ and softmax — at 512 px ~10 ms of a ~70 ms self-attention forward+backward — for 32 MB per
    /// self-attention and 9 MB per cross-attention at batch 1 (1.2 GB over Σ's 28 blocks without gradient
    /// checkpointing; with it, one block's worth). 1024 px self-attention (512 MB) recomputes.
    /// </summary>
    public static long KeptProbabilityBudgetBytes { get; set; } = DefaultKeptProbabilityBudgetBytes;

    /// <summary>64 MB: every call at 512 px and batch 1 (the trainer's <c>--attention_probabilities_mb</c> default).</summary>
    public const long DefaultKeptProbabilityBudgetBytes = 64L << 20;

    /// <summary>Whether <see cref="Kernel"/> selects the chunked kernel for <paramref name="query"/>.</summary>
    public static bool Selected(Tensor query) => Kernel switch
    {
        AttentionKernel.Chunked => true,
        AttentionKernel.Sdpa => false,
        _ => query.device_type == DeviceType.CPU && query.dtype == ScalarType.BFloat16,
    };

    /// <summary>
    /// Attention of <paramref name="query"/> [B, h, N, d] over <paramref name="key"/>, <paramref name="value"/> [B, h, M, d]
    /// with an additive <paramref name="mask"/> broadcastable to [B, h, N, M] (or null), scale 1/√d. Same result as
    /// <c>scaled_dot_product_attention(query, key, value, mask)</c>, differentiable in query, key and value.
    /// <paramref name="scoreBudgetBytes"/>: overrides <see cref="ScoreBudgetBytes"/> for this call.
    /// </summary>
    public static Tensor Apply(Tensor query, Tensor key, Tensor value, Tensor? mask = null, long? scoreBudgetBytes = null)
    {
        if (query.dim() != 4 || key.dim() != 4 || value.dim() != 4)
            throw new ArgumentException($"attention expects [B, h, N, d] tensors, got query [{string.Join(", ", query.shape)}], key [{string.Join(", ", key.shape)}]");
        long perHead = query.shape[0] * query.shape[2] * key.shape[2] * query.element_size();
        long group = Math.Clamp((scoreBudgetBytes ?? ScoreBudgetBytes) / Math.Max(perHead, 1), 1, query.shape[1]);
        bool keep = KeepsProbabilities(query, key, value);
        return AttentionFunction.apply(query, key, value, mask!, keep ? query.shape[1] : group, keep);
    }

    /// <summary>Whether a call with these inputs keeps its probabilities for backward (see <see cref="KeptProbabilityBudgetBytes"/>).</summary>
    internal static bool KeepsProbabilities(Tensor query, Tensor key, Tensor value) =>
        query.shape[0] * query.shape[1] * query.shape[2] * key.shape[2] * query.element_size() <= KeptProbabilityBudgetBytes
        && query.dtype == ScalarType.BFloat16 && query.device_type == DeviceType.CPU && Bf16SoftmaxBackward.Supported
        && is_grad_enabled() && (query.requires_grad || key.requires_grad || value.requires_grad);

    /// <summary>softmax(scaled q · kᵀ + mask) for one group; <paramref name="scaledQuery"/> already carries 1/√d.</summary>
    static Tensor Scores(Tensor scaledQuery, Tensor key, Tensor? mask)
    {
        var s = matmul(scaledQuery, key.transpose(-1, -2));
        if (mask is not null) s.add_(mask);
        return s;
    }

    sealed class AttentionFunction : autograd.SingleTensorFunction<AttentionFunction>
    {
        public override string Name => "ChunkedAttention";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            Tensor q = (Tensor)vars[0], k = (Tensor)vars[1], v = (Tensor)vars[2];
            var mask = vars[3] as Tensor;
            long group = (long)vars[4];
            bool keep = (bool)vars[5];
            ctx.save_data("group", group);
            // Saved as [q, k, v, mask or an empty stand-in, kept probabilities if any]: backward reads what it has from the count.
            var saved = new List<Tensor> { q, k, v, mask ?? empty(0) };

            long batch = q.shape[0], heads = q.shape[1], n = q.shape[2], d = q.shape[3];
            double scale = 1.0 / Math.Sqrt(d);
            // Written head by head into [B, N, h, d] so that the caller's transpose(1, 2).reshape(B, N, h·d) is free.
            var output = empty(new[] { batch, n, heads, d }, dtype: q.dtype, device: q.device);
            Tensor? kept = null;
            for (long h0 = 0; h0 < heads; h0 += group)
            {
                using var scope = NewDisposeScope();
                long g = Math.Min(group, heads - h0);
                var p = Scores(q.narrow(1, h0, g) * scale, k.narrow(1, h0, g), mask).softmax(-1);
                output.narrow(2, h0, g).copy_(matmul(p, v.narrow(1, h0, g)).transpose(1, 2));
                if (keep) kept = p.MoveToOuterDisposeScope();   // keep implies one group of all heads
            }
            if (kept is not null) saved.Add(kept);
            ctx.save_for_backward(saved);
            return output.transpose(1, 2);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            Tensor q = saved[0], k = saved[1], v = saved[2];
            Tensor? mask = saved[3].numel() > 0 ? saved[3] : null;
            Tensor? keptProbabilities = saved.Count > 4 ? saved[4] : null;

            long batch = q.shape[0], heads = q.shape[1], n = q.shape[2], m = k.shape[2], d = q.shape[3];
            double scale = 1.0 / Math.Sqrt(d);
            long group = (long)ctx.get_data("group");
            using var outer = NewDisposeScope();
            var dq = empty(new[] { batch, n, heads, d }, dtype: q.dtype, device: q.device);
            var dk = empty(new[] { batch, m, heads, d }, dtype: k.dtype, device: k.device);
            var dv = empty(new[] { batch, m, heads, d }, dtype: v.dtype, device: v.device);
            for (long h0 = 0; h0 < heads; h0 += group)
            {
                using var scope = NewDisposeScope();
                long g = Math.Min(group, heads - h0);
                var qs = q.narrow(1, h0, g) * scale;
                var kg = k.narrow(1, h0, g);
                var vg = v.narrow(1, h0, g);
                var dOut = gradOutput.narrow(1, h0, g);

                // Kept probabilities (one group of all heads), or recomputed ones attached to their scores for autograd.
                Tensor? s = null;
                Tensor p;
                if (keptProbabilities is not null) p = keptProbabilities;
                else
                {
                    s = Scores(qs, kg, mask).requires_grad_(true);
                    using (enable_grad()) p = s.softmax(-1);
                }
                // dV = Pᵀ·dO and dK = dSᵀ·Q' are computed as (dOᵀ·P)ᵀ and (Q'ᵀ·dS)ᵀ: oneDNN's bf16 GEMM with a transposed
                // left operand runs at ~320 GFLOP/s on the reference CPU, the untransposed form at ~420.
                dv.narrow(2, h0, g).copy_(matmul(dOut.transpose(-1, -2), p.detach()).permute(0, 3, 1, 2));
                var dp = matmul(dOut, vg.transpose(-1, -2));
                // dS = P ⊙ (dP − rowsum(dP ⊙ P)), accumulated in float32: our kernel over P alone when it was kept,
                // else libtorch's fused softmax backward, which autograd reaches only through the scores.
                Tensor ds;
                if (s is null)
                {
                    ds = dp.contiguous();
                    Bf16SoftmaxBackward.ApplyInPlace(p, ds);
                }
                else ds = autograd.grad(new[] { p }, new[] { s }, new[] { dp })[0];
                dq.narrow(2, h0, g).copy_((matmul(ds, kg) * scale).transpose(1, 2));
                dk.narrow(2, h0, g).copy_(matmul(qs.transpose(-1, -2), ds).permute(0, 3, 1, 2));
            }
            return new List<Tensor>
            {
                dq.transpose(1, 2).MoveToOuterDisposeScope(), dk.transpose(1, 2).MoveToOuterDisposeScope(),
                dv.transpose(1, 2).MoveToOuterDisposeScope(), null!, null!, null!,
            };
        }
    }
}
