using System.Text.Json;
using System.Text.RegularExpressions;
using PixArtLora.Diffusion;
using PixArtLora.Inference;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// Kind <c>pipeline</c>: diffusers' PixArt pipeline called with prompt/negative embeddings and initial latents. Our
/// pipeline (built around the case's transformer/, vae/ and scheduler/ folders) must reproduce the per-step latents,
/// the final latents, the VAE decode and the postprocessed image. The reference stacks the transformer's rows
/// [negative; prompt], ours [prompt; negative]; the raw outputs are compared after reordering.
/// </summary>
public sealed class PipelineParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds => new[] { "pipeline" };

    public void Run(ParityCase c)
    {
        var json = c.Json;
        var dirs = json.GetProperty("component_dirs");
        int steps = json.GetProperty("num_inference_steps").GetInt32();
        double guidance = json.GetProperty("guidance_scale").GetDouble();
        int height = json.GetProperty("height").GetInt32(), width = json.GetProperty("width").GetInt32();
        bool binning = UsesBinning(json);
        int imagesPerPrompt = CallArgument(json, "num_images_per_prompt") is { } n ? int.Parse(n) : 1;

        using var transformer = PixArtTransformer2DModel.FromPretrained(c.PathOf(dirs.GetProperty("transformer").GetString()!));
        using var vae = AutoencoderKL.Load(c.PathOf(dirs.GetProperty("vae").GetString()!));
        var scheduler = SchedulerConfig.Load(c.PathOf(dirs.GetProperty("scheduler").GetString()!));
        if (json.TryGetProperty("vae_scale_factor", out var factor))
            Assert.Equal(factor.GetInt32(), vae.Config.SpatialScaleFactor);
        using var pipeline = PixArtPipeline.FromModules(transformer, vae, scheduler, new PipelineModulesOptions { ModelName = c.Name });

        using var prompts = new PromptEmbeddings(c.Tensor("prompt_embeds"), c.Tensor("prompt_attention_mask"));
        // Without guidance (scale <= 1) the reference has no unconditional branch and the case may omit it.
        using var negatives = c.Has("negative_prompt_embeds")
            ? new PromptEmbeddings(c.Tensor("negative_prompt_embeds"), c.Tensor("negative_prompt_attention_mask"))
            : null;
        using var latents = c.Tensor("latents");
        var sampling = pipeline.ChooseSampling(null, steps, guidance);
        var size = pipeline.PlanSize(width, height, binning);

        if (c.Has("timesteps"))
        {
            using var sampler = SamplerFactory.Create(sampling.Sampler, sampling.Steps, scheduler);
            using var expectedTimesteps = c.Tensor("timesteps");
            Assert.Equal(expectedTimesteps.to(float64).data<double>().ToArray(), sampler.Timesteps.ToArray());
        }

        // The loop alone, checking every step against the reference's intermediates. Rows are repeated per image,
        // prompt-major, as the pipeline repeats them for num_images_per_prompt.
        var rows = Enumerable.Range(0, (int)prompts.Count).SelectMany(p => Enumerable.Repeat((long)p, imagesPerPrompt)).ToList();
        using var promptRows = prompts.Select(rows);
        using var negativeRows = negatives?.Select(rows);
        var outputs = new List<Tensor>();
        var stepLatents = new List<Tensor>();
        using var final = pipeline.Denoise(promptRows, negativeRows, latents, sampling, new MicroConditions(size.GeneratedHeight, size.GeneratedWidth),
            onStep: p => stepLatents.Add(p.Latents.detach().clone().DetachFromDisposeScope()),
            onModelOutput: o => outputs.Add(o.detach().clone().DetachFromDisposeScope()));
        try
        {
            if (c.Has("debug.transformer_outputs"))
            {
                using var expected = c.Tensor("debug.transformer_outputs");
                long batch = promptRows.Count;
                for (int i = 0; i < outputs.Count; i++)
                {
                    // Reference rows under guidance: [negative; prompt]. Ours: [prompt; negative].
                    using var reordered = outputs[i].shape[0] == 2 * batch
                        ? cat(new[] { outputs[i].narrow(0, batch, batch), outputs[i].narrow(0, 0, batch) }, 0)
                        : outputs[i].alias();
                    TensorAssert.AllClose(reordered, expected[i], c.Atol, c.Rtol, $"{c.Name}:debug.transformer_outputs[{i}]");
                }
            }
            if (c.Has("step_latents"))
            {
                using var expected = c.Tensor("step_latents");
                Assert.Equal(expected.shape[0], stepLatents.Count);
                for (int i = 0; i < stepLatents.Count; i++)
                    TensorAssert.AllClose(stepLatents[i], expected[i], c.Atol, c.Rtol, $"{c.Name}:step_latents[{i}]");
            }
            c.AssertClose("final_latents", final);
            if (c.Has("decoded"))
            {
                using var decoded = vae.Decode(final / vae.Config.ScalingFactor, VaeTiling.Off);
                c.AssertClose("decoded", decoded);
            }
        }
        finally
        {
            foreach (var t in outputs.Concat(stepLatents)) t.Dispose();
        }

        // The whole call, as a user makes it.
        using var result = pipeline.Generate(new GenerationRequest
        {
            PromptEmbeddings = prompts, NegativeEmbeddings = negatives, Latents = latents,
            Width = width, Height = height, UseResolutionBinning = binning, Steps = steps, GuidanceScale = guidance,
            ImagesPerPrompt = imagesPerPrompt,
        });
        c.AssertClose("image", result.Images);
    }

    /// <summary>use_resolution_binning from a field of the case, else from the recorded call (diffusers' default: true).</summary>
    static bool UsesBinning(JsonElement json) => CallArgument(json, "use_resolution_binning") is not { } value || value == "True";

    /// <summary>A call argument: a field of the case of that name, else its value in the recorded call text; null if neither.</summary>
    static string? CallArgument(JsonElement json, string name)
    {
        if (json.TryGetProperty(name, out var field))
            return field.ValueKind switch { JsonValueKind.True => "True", JsonValueKind.False => "False", _ => field.ToString() };
        if (json.TryGetProperty("call", out var call) &&
            Regex.Match(call.GetString() ?? "", $@"\b{name}\s*=\s*(\w+)") is { Success: true } m)
            return m.Groups[1].Value;
        return null;
    }
}
