using PixArtLora.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

public sealed partial class PixArtPipeline
{
    /// <summary>
    /// Generates prompts × images-per-prompt images in one batch. Invalid requests (unknown sampler, bad size, missing
    /// prompts) fail before any model is loaded.
    /// </summary>
    /// <param name="request">What to generate.</param>
    /// <param name="onStep">Called after every sampler step (progress bars, previews).</param>
    /// <param name="ct">Checked after every step.</param>
    public GenerationResult Generate(GenerationRequest request, Action<GenerationProgress>? onStep = null, CancellationToken ct = default)
    {
        var sampling = ChooseSampling(request.Sampler, request.Steps, request.GuidanceScale);
        var size = PlanSize(request.Width, request.Height, request.UseResolutionBinning);
        if (request.ImagesPerPrompt < 1) throw new ArgumentException($"images per prompt is {request.ImagesPerPrompt}, expected at least 1");
        int promptCount = request.PromptEmbeddings is { } given ? (int)given.Count : request.Prompts.Count;
        if (promptCount == 0) throw new ArgumentException("no prompt given");
        if (request.PromptEmbeddings is null && request.Prompts.Any(p => p is null))
            throw new ArgumentException("a prompt is null");
        int batch = promptCount * request.ImagesPerPrompt;
        var seeds = request.SeedsFor(batch);

        var owned = new List<IDisposable>();
        try
        {
            // 1. Text features, prompt-major rows (all images of prompt 0 first), as diffusers repeats them.
            PromptEmbeddings prompts, negatives;
            if (request.PromptEmbeddings is { } promptFeatures)
            {
                prompts = promptFeatures;
                negatives = request.NegativeEmbeddings
                            ?? (sampling.UsesGuidance ? Track(owned, EncodePrompts(new[] { request.NegativePrompt })) : prompts);
            }
            else
            {
                var texts = request.Prompts.ToList();
                bool encodeNegative = sampling.UsesGuidance && request.NegativeEmbeddings is null;
                if (encodeNegative) texts.Add(request.NegativePrompt);
                var encoded = Track(owned, EncodePrompts(texts));
                prompts = Track(owned, encoded.Select(Enumerable.Range(0, promptCount).Select(i => (long)i).ToList()));
                negatives = request.NegativeEmbeddings ?? (encodeNegative ? Track(owned, encoded.Select(new long[] { promptCount })) : prompts);
            }
            var rows = Enumerable.Range(0, promptCount).SelectMany(p => Enumerable.Repeat((long)p, request.ImagesPerPrompt)).ToList();
            var promptRows = Track(owned, prompts.Select(rows));
            PromptEmbeddings? negativeRows = null;
            if (sampling.UsesGuidance)
            {
                if (negatives.Length != prompts.Length)
                    throw new ArgumentException($"negative prompt embeddings have {negatives.Length} tokens, the prompts {prompts.Length}; encode both at the same length");
                negativeRows = negatives.Count == 1 ? Track(owned, negatives.Repeat(0, batch))
                    : negatives.Count == promptCount ? Track(owned, negatives.Select(rows))
                    : throw new ArgumentException($"{negatives.Count} negative embeddings for {promptCount} prompts; give one, or one per prompt");
            }

            // 2. Initial latents: image i from its own generator seeded with seeds[i].
            var noise = Track(owned, new PerImageNoise(seeds));
            var latentShape = new long[] { batch, TransformerConfig.InChannels, size.GeneratedHeight / VaeScaleFactor, size.GeneratedWidth / VaeScaleFactor };
            Tensor initial;
            if (request.Latents is { } latents)
            {
                if (!latents.shape.SequenceEqual(latentShape))
                    throw new ArgumentException($"latents: shape [{string.Join(", ", latents.shape)}], expected [{string.Join(", ", latentShape)}] for {batch} images at {size.GeneratedWidth}x{size.GeneratedHeight}");
                initial = latents.to(float32, CPU, copy: true);
            }
            else initial = noise.Next(latentShape, float32, CPU);
            Track(owned, initial);

            // 3. Denoise, then 4. decode at the generated size and resize back to the request.
            var micro = new MicroConditions(size.GeneratedHeight, size.GeneratedWidth);
            using var final = Denoise(promptRows, negativeRows, initial, sampling, micro, noise, request.SamplerOptions, onStep, null, ct);
            var images = DecodeLatents(final, size);
            var labels = request.PromptEmbeddings is null || request.Prompts.Count == promptCount
                ? request.Prompts
                : Enumerable.Repeat("", promptCount).ToList();
            var items = rows.Select((p, i) => new GeneratedImageInfo(i, labels[(int)p], seeds[i])).ToList();
            return new GenerationResult(images, items, size, sampling,
                request.NegativeEmbeddings is null && request.PromptEmbeddings is null ? request.NegativePrompt : null);
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    static T Track<T>(List<IDisposable> owned, T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    /// <summary>
    /// The sampler loop alone: from <paramref name="initialLatents"/> [B, C, h, w] (standard normal; scaled by the
    /// sampler's initial sigma here, as diffusers' prepare_latents does) to the final latents (float32, on
    /// <see cref="Device"/>). <paramref name="negatives"/> null runs without guidance.
    /// </summary>
    /// <param name="onModelOutput">Sees every raw transformer output, rows [conditional; unconditional].</param>
    public Tensor Denoise(PromptEmbeddings prompts, PromptEmbeddings? negatives, Tensor initialLatents, SamplingChoice sampling,
        MicroConditions? microConditions = null, NoiseSource? noise = null, SamplerOptions? samplerOptions = null,
        Action<GenerationProgress>? onStep = null, Action<Tensor>? onModelOutput = null, CancellationToken ct = default)
    {
        if (prompts.Count != initialLatents.shape[0])
            throw new ArgumentException($"{prompts.Count} prompt rows for {initialLatents.shape[0]} latents; expected one per image");
        if (sampling.UsesGuidance && negatives is null)
            throw new ArgumentException($"guidance scale {sampling.GuidanceScale} needs negative prompt embeddings");
        var transformer = Transformer;
        bool wasTraining = transformer.training;
        transformer.eval();
        try
        {
            using var noGrad = no_grad();
            using var sampler = SamplerFactory.Create(sampling.Sampler, sampling.Steps, SchedulerConfig, samplerOptions);
            using var denoiser = new TransformerDenoiser(transformer, prompts, sampling.UsesGuidance ? negatives : null, microConditions)
            {
                OnModelOutput = onModelOutput,
            };
            using var start = initialLatents.to(float32, Device);
            var guidance = sampling.UsesGuidance ? new ClassifierFreeGuidance(sampling.GuidanceScale) : null;
            return SamplingLoop.Run(sampler, start, denoiser.Function, noise, guidance, progress =>
            {
                onStep?.Invoke(new GenerationProgress(progress.StepIndex + 1, progress.StepCount, progress.Sample));
                ct.ThrowIfCancellationRequested();
            });
        }
        finally
        {
            if (wasTraining) transformer.train();
        }
    }

    /// <summary>
    /// Latents → images [B, 3, H, W] float32 in [0, 1] on the CPU: VAE decode of latents / scaling_factor (one image
    /// at a time, tiled per <see cref="VaeTiling"/>), resized back to the requested size when binned, then
    /// clamp(x / 2 + 0.5, 0, 1) as diffusers' postprocess.
    /// </summary>
    public Tensor DecodeLatents(Tensor latents, GenerationSize size)
    {
        var vae = Vae;
        using var noGrad = no_grad();
        var images = new List<Tensor>();
        try
        {
            for (long i = 0; i < latents.shape[0]; i++)
            {
                using var scope = NewDisposeScope();
                var z = latents.narrow(0, i, 1).to(vae.DType, vae.Device) / VaeConfig.ScalingFactor;
                var decoded = vae.Decode(z, VaeTiling).to(float32);
                if (size.NeedsResize) decoded = ResolutionBinning.ResizeAndCrop(decoded, size.Width, size.Height);
                images.Add((decoded / 2 + 0.5).clamp(0, 1).cpu().MoveToOuterDisposeScope());
            }
            return cat(images, 0);
        }
        finally
        {
            foreach (var t in images) t.Dispose();
        }
    }
}
