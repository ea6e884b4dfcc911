using System.Globalization;
using PixArtLora.Diffusion;
using PixArtLora.Inference;
using PixArtLora.IO;
using PixArtLora.Models.Vae;
using PixArtLora.Training.Logging;
using SixLabors.ImageSharp;
using static TorchSharp.torch;

namespace PixArtLora.Training.Loop;

/// <summary>
/// Validation images during training: the inference pipeline around the transformer being trained (adapters attached,
/// EMA weights swapped in for full fine-tuning), the VAE the data feed already holds, and the cached prompt features,
/// so no model is loaded for it. Every validation uses the same seeds, so images of successive validations differ only
/// by what the model learnt. PNGs go to <c>validation/step-&lt;N&gt;/</c> and to TensorBoard.
/// </summary>
public sealed class TrainingValidation
{
    public required TrainingPlan Plan { get; init; }
    public required TrainableTransformer Model { get; init; }
    public required AutoencoderKL Vae { get; init; }
    public required SchedulerConfig Scheduler { get; init; }
    public required Registry.ModelVariant? Variant { get; init; }
    public required int Tokens { get; init; }
    /// <summary>Caption features of prompts, [N, L, D] and mask [N, L] on the CPU.</summary>
    public required Func<IReadOnlyList<string>, (Tensor Embeddings, Tensor Mask)> Encode { get; init; }
    public ExponentialMovingAverage? Ema { get; init; }
    public TensorBoardWriter? TensorBoard { get; init; }
    public Action<string>? Log { get; init; }

    /// <summary>The PNGs written so far, oldest first.</summary>
    public List<string> Images { get; } = new();

    /// <summary>Renders every validation prompt <c>--num_validation_images</c> times after <paramref name="step"/>.</summary>
    public void Run(long step, int epoch)
    {
        var s = Plan.Settings;
        var prompts = s.ValidationPrompt;
        if (prompts.Length == 0) return;
        bool wasTraining = Model.Model.training;
        Ema?.SwapIn();
        if (Ema is not null) Model.SyncWorkingWeights();   // the EMA swaps the masters; the bf16 model renders
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (embeddings, mask) = Encode(prompts);
            var (negative, negativeMask) = Encode(new[] { "" });
            using var positive = new PromptEmbeddings(embeddings, mask);
            using var unconditional = new PromptEmbeddings(negative, negativeMask);
            using var pipeline = PixArtPipeline.FromModules(Model.Model, Vae, Scheduler, new PipelineModulesOptions
            {
                Variant = Variant, MaxSequenceLength = Tokens, ModelName = $"{s.Model} ({Plan.RunName}, step {step})",
            });
            using var result = pipeline.Generate(new GenerationRequest
            {
                PromptEmbeddings = positive, NegativeEmbeddings = unconditional, ImagesPerPrompt = s.NumValidationImages,
                Width = s.Resolution, Height = s.Resolution, Steps = s.ValidationSteps, Seed = s.Seed,
                // Training resolutions need not be bins of the inference table; render exactly what was trained.
                UseResolutionBinning = false,
            });
            string folder = Path.Combine(Plan.OutputDir, "validation", string.Create(CultureInfo.InvariantCulture, $"step-{step:D6}"));
            Directory.CreateDirectory(folder);
            for (int i = 0; i < result.Count; i++)
            {
                int prompt = i / s.NumValidationImages, k = i % s.NumValidationImages;
                using var image = result.ToImage(i);
                string path = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"prompt{prompt}-{k}.png"));
                using (var png = new MemoryStream())
                {
                    image.SaveAsPng(png);
                    AtomicFile.WriteAllBytes(path, png.ToArray());
                }
                Images.Add(path);
                TensorBoard?.AddImage(string.Create(CultureInfo.InvariantCulture, $"validation/prompt{prompt}/{k}"), image, step);
            }
            TensorBoard?.Flush();
            Log?.Invoke($"validation images (epoch {epoch}, step {step}): {folder}");
        }
        finally
        {
            Ema?.SwapOut();
            if (Ema is not null) Model.SyncWorkingWeights();
            Model.Model.train(wasTraining);
        }
    }
}
