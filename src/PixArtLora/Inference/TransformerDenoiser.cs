using PixArtLora.Diffusion;
using PixArtLora.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>
/// Binds the PixArt transformer to one batch's conditioning and gives the <see cref="DenoiserFn"/> the sampling loop
/// calls. Under guidance <see cref="SamplingLoop"/> passes the doubled batch with the conditional rows first and the
/// unconditional rows second, so the caption features are stacked [prompt; negative]. diffusers stacks them the
/// other way round ([negative; prompt], then <c>uncond, cond = out.chunk(2)</c>); every row is computed on its own,
/// so both orders give the same numbers.
/// </summary>
public sealed class TransformerDenoiser : IDisposable
{
    readonly PixArtTransformer2DModel _model;
    readonly Tensor _context, _mask;
    readonly Tensor? _resolution, _aspectRatio;

    /// <summary>Rows the model is called with: the batch, or twice the batch under guidance.</summary>
    public long Rows { get; }

    /// <summary>Called with the raw transformer output [rows, out_channels, h, w] of every evaluation (debugging, parity checks).</summary>
    public Action<Tensor>? OnModelOutput { get; set; }

    /// <param name="model">The transformer (its parameters' device is where everything runs).</param>
    /// <param name="prompts">Conditional features, one row per image.</param>
    /// <param name="negatives">Unconditional features, one row per image; null without guidance.</param>
    /// <param name="microConditions">α-MS resolution and aspect ratio; ignored when the model does not use them.</param>
    public TransformerDenoiser(PixArtTransformer2DModel model, PromptEmbeddings prompts, PromptEmbeddings? negatives,
        MicroConditions? microConditions)
    {
        _model = model;
        var device = model.parameters().First().device;
        var dtype = model.parameters().First().dtype;
        using var scope = NewDisposeScope();
        if (negatives is not null && negatives.Count != prompts.Count)
            throw new ArgumentException($"{prompts.Count} prompt rows but {negatives.Count} negative rows; expected one of each per image");
        Tensor embeddings = negatives is null
            ? prompts.Embeddings
            : cat(new[] { prompts.Embeddings, negatives.Embeddings.to(prompts.Embeddings.dtype, prompts.Embeddings.device) }, 0);
        Tensor mask = negatives is null ? prompts.Mask : cat(new[] { prompts.Mask, negatives.Mask.to(prompts.Mask.device) }, 0);
        Rows = embeddings.shape[0];
        _context = embeddings.to(dtype, device).MoveToOuterDisposeScope();
        _mask = mask.to(device).MoveToOuterDisposeScope();
        if (microConditions is not null && model.Config.ResolvedUseAdditionalConditions)
        {
            _resolution = microConditions.Resolution(Rows, dtype, device).MoveToOuterDisposeScope();
            _aspectRatio = microConditions.AspectRatioTensor(Rows, dtype, device).MoveToOuterDisposeScope();
        }
        else if (model.Config.ResolvedUseAdditionalConditions)
            throw new ArgumentException("this transformer uses micro-conditions (use_additional_conditions); pass the generated size");
    }

    /// <summary>The function <see cref="SamplingLoop.Run"/> calls: latents [rows, C, h, w] and timesteps [rows] → prediction.</summary>
    public DenoiserFn Function => (modelInput, timesteps) =>
    {
        if (modelInput.shape[0] != Rows)
            throw new InvalidOperationException($"the sampler passed {modelInput.shape[0]} rows; the conditioning has {Rows}");
        using var noGrad = no_grad();
        var output = _model.forward(modelInput, _context, timesteps, _mask, _resolution, _aspectRatio);
        OnModelOutput?.Invoke(output);
        return output;
    };

    public void Dispose()
    {
        _context.Dispose();
        _mask.Dispose();
        _resolution?.Dispose();
        _aspectRatio?.Dispose();
    }
}
