using PixArtLora.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>diffusers' <c>TimestepEmbedding</c>: linear_1 → SiLU → linear_2, applied to a sinusoidal projection.</summary>
public sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // diffusers key names
    public nn.Module<Tensor, Tensor> linear_1;
    public nn.Module<Tensor, Tensor> linear_2;
#pragma warning restore IDE1006

    public TimestepEmbedding(int inChannels, int embedDim, Device? device = null, ScalarType? dtype = null) : base(nameof(TimestepEmbedding))
    {
        linear_1 = nn.Linear(inChannels, embedDim, hasBias: true, device: device, dtype: dtype);
        linear_2 = nn.Linear(embedDim, embedDim, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor sample)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(DtypeBoundary.Call(linear_1, sample));
        return DtypeBoundary.Call(linear_2, h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>PixArtAlphaCombinedTimestepSizeEmbeddings</c> (the <c>adaln_single.emb</c> keys): the timestep
/// embedding, plus for α-MS models the resolution (height, width) and aspect-ratio embeddings, each of width D/3,
/// concatenated to width D and added to it.
/// </summary>
public sealed class CombinedTimestepSizeEmbeddings : nn.Module
{
#pragma warning disable IDE1006 // diffusers key names
    public readonly TimestepEmbedding timestep_embedder;
    public readonly TimestepEmbedding? resolution_embedder;
    public readonly TimestepEmbedding? aspect_ratio_embedder;
#pragma warning restore IDE1006

    /// <summary>Width of the sinusoidal projections (fixed at 256 in PixArt).</summary>
    public const int ProjectionChannels = 256;

    public bool UseAdditionalConditions { get; }

    public CombinedTimestepSizeEmbeddings(int embedDim, int sizeEmbedDim, bool useAdditionalConditions, Device? device = null, ScalarType? dtype = null)
        : base(nameof(CombinedTimestepSizeEmbeddings))
    {
        UseAdditionalConditions = useAdditionalConditions;
        timestep_embedder = new TimestepEmbedding(ProjectionChannels, embedDim, device, dtype);
        if (useAdditionalConditions)
        {
            resolution_embedder = new TimestepEmbedding(ProjectionChannels, sizeEmbedDim, device, dtype);
            aspect_ratio_embedder = new TimestepEmbedding(ProjectionChannels, sizeEmbedDim, device, dtype);
        }
        RegisterComponents();
    }

    /// <summary>[B, D] conditioning. <paramref name="resolution"/> [B, 2] (height, width in pixels) and
    /// <paramref name="aspectRatio"/> [B, 1] (height / width) are required exactly when micro-conditions are on.</summary>
    public Tensor forward(Tensor timestep, Tensor? resolution, Tensor? aspectRatio, long batchSize, ScalarType hiddenDtype, Action<string, Tensor>? tap = null)
    {
        using var scope = NewDisposeScope();
        var proj = SinusoidalEmbeddings.TimestepProjection(timestep, ProjectionChannels);
        tap?.Invoke("timestep_proj", proj);
        var conditioning = timestep_embedder.forward(proj.to(hiddenDtype));
        if (UseAdditionalConditions)
        {
            if (resolution is null || aspectRatio is null)
                throw new ArgumentException("this model uses micro-conditions (use_additional_conditions): pass resolution [B, 2] and aspect_ratio [B, 1]");
            var resEmb = resolution_embedder!.forward(SinusoidalEmbeddings.TimestepProjection(resolution.flatten(), ProjectionChannels).to(hiddenDtype));
            tap?.Invoke("resolution_embedding", resEmb);
            var arEmb = aspect_ratio_embedder!.forward(SinusoidalEmbeddings.TimestepProjection(aspectRatio.flatten(), ProjectionChannels).to(hiddenDtype));
            tap?.Invoke("aspect_ratio_embedding", arEmb);
            conditioning = conditioning + torch.cat(new[] { resEmb.reshape(batchSize, -1), arEmb.reshape(batchSize, -1) }, dim: 1);
        }
        return conditioning.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>AdaLayerNormSingle</c> (adaLN-single, PixArt-α §2.3): one timestep conditioning shared by all blocks.
/// Returns the [B, 6D] modulation (<c>linear(silu(emb))</c>) that each block adds to its own scale_shift_table, and
/// the [B, D] embedded timestep that modulates the final layer.
/// </summary>
public sealed class AdaLayerNormSingle : nn.Module
{
#pragma warning disable IDE1006 // diffusers key names
    public readonly CombinedTimestepSizeEmbeddings emb;
    public nn.Module<Tensor, Tensor> linear;
#pragma warning restore IDE1006

    public AdaLayerNormSingle(int embedDim, bool useAdditionalConditions, Device? device = null, ScalarType? dtype = null) : base(nameof(AdaLayerNormSingle))
    {
        emb = new CombinedTimestepSizeEmbeddings(embedDim, embedDim / 3, useAdditionalConditions, device, dtype);
        linear = nn.Linear(embedDim, 6 * embedDim, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    public (Tensor Modulation, Tensor EmbeddedTimestep) forward(Tensor timestep, Tensor? resolution, Tensor? aspectRatio,
        long batchSize, ScalarType hiddenDtype, Action<string, Tensor>? tap = null)
    {
        using var scope = NewDisposeScope();
        var embedded = emb.forward(timestep, resolution, aspectRatio, batchSize, hiddenDtype, tap);
        var modulation = DtypeBoundary.Call(linear, nn.functional.silu(embedded));
        return (modulation.MoveToOuterDisposeScope(), embedded.MoveToOuterDisposeScope());
    }
}
