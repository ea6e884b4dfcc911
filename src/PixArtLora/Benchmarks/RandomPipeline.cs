using PixArtLora.Diffusion;
using PixArtLora.Inference;
using PixArtLora.Models.Common;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>
/// A variant's whole pipeline at full size with random weights, built in memory: its transformer (registry config),
/// its VAE architecture, its T5 encoder (T5 v1.1 XXL, or the tiny variant's small T5) with the real T5 SentencePiece
/// tokenizer embedded in the library, and DPM-Solver++ as the releases configure it. Nothing is downloaded, so the
/// end-to-end benchmark runs anywhere; the work per image is the real model's (same shapes, same token lengths).
/// </summary>
public static class RandomPipeline
{
    /// <summary>
    /// Builds the pipeline on <paramref name="device"/>: transformer and VAE in <paramref name="dtype"/>, T5 in
    /// <paramref name="textEncoderDtype"/>. T5 is created on the first prompt encode and then kept (the benchmark
    /// encodes again for every image). The pipeline owns and disposes every module.
    /// </summary>
    public static PixArtPipeline Build(ModelVariant variant, ScalarType dtype, ScalarType textEncoderDtype, Device device, long seed = 0)
    {
        var t5Config = TextEncoderConfigFor(variant);
        if (variant.TransformerConfig.CaptionChannels is int width && width != t5Config.DModel)
            throw new InvalidOperationException($"{variant.Id}: caption_channels {width}, but its T5 encoder has d_model {t5Config.DModel}");
        var transformer = RandomTransformer(variant.TransformerConfig, device, dtype, seed);
        AutoencoderKL? vae = null;
        try
        {
            vae = RandomVae(VaeConfigFor(variant), device, dtype, seed);
            foreach (var p in transformer.parameters()) p.requires_grad = false;
            transformer.eval();
            var encoderOptions = new T5PromptEncoderOptions
            {
                MaxLength = variant.CaptionTokens, Device = device, DType = textEncoderDtype, OutputDevice = CPU,
                Preprocessing = PromptPreprocessing.Mode.LowerStrip,
            };
            var scheduler = SchedulerConfig.Parse(TinyModels.SchedulerConfigJson, "diffusers' DPMSolverMultistepScheduler config of the PixArt releases");
            var pipeline = PixArtPipeline.FromModules(transformer, vae, scheduler, new PipelineModulesOptions
            {
                Variant = variant,
                ModelName = $"{variant.Id} (random weights)",
                TextEncoder = () => new T5PromptEncoder(T5Tokenizer.FromModel(TinyModels.T5SentencePieceModel()),
                    RandomTextEncoder(t5Config, device, textEncoderDtype, seed), encoderOptions),
                OwnsModules = true,
            });
            pipeline.KeepTextEncoder = true;
            return pipeline;
        }
        catch
        {
            vae?.Dispose();
            transformer.Dispose();
            throw;
        }
    }

    /// <summary>The T5 encoder a variant conditions on: T5 v1.1 XXL for the released ones, the tiny T5 for <c>tiny</c>.</summary>
    public static T5Config TextEncoderConfigFor(ModelVariant variant) =>
        variant.Id == TinyModels.VariantId ? TinyModels.TextEncoderConfig : T5Config.V11Xxl;

    /// <summary>
    /// The VAE a variant decodes with. α's sd-vae-ft-ema and Σ's SDXL VAE share one architecture (KL-f8: blocks of
    /// 128, 256, 512, 512 channels, 2 ResNets each, 4 latent channels) and differ in weights and scaling factor, so
    /// random weights of that architecture cost exactly what decoding costs. The sample size only sets the tile size
    /// of tiled decoding, which applies above ~1280² pixels; the variant's base size is used.
    /// </summary>
    public static AutoencoderKLConfig VaeConfigFor(ModelVariant variant)
    {
        if (variant.Id == TinyModels.VariantId) return TinyModels.VaeConfig;
        return new AutoencoderKLConfig
        {
            InChannels = 3, OutChannels = 3, LatentChannels = variant.TransformerConfig.InChannels, LayersPerBlock = 2, NormNumGroups = 32,
            BlockOutChannels = new[] { 128, 256, 512, 512 },
            DownBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.DownBlockType, 4).ToArray(),
            UpBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.UpBlockType, 4).ToArray(),
            SampleSize = new[] { variant.ImageSize }, ScalingFactor = variant.Vae.ScalingFactor, ForceUpcast = true,
        };
    }

    /// <summary>
    /// A transformer with random weights: built on the meta device, given uninitialised storage, then filled by
    /// <see cref="FillRandom"/>. Faster than the constructor's per-layer initialisation, and it leaves torch's global
    /// generator alone (a training run in the same process keeps its random sequence).
    /// </summary>
    public static PixArtTransformer2DModel RandomTransformer(PixArtTransformerConfig config, Device device, ScalarType dtype, long seed = 0) =>
        FilledOnDevice(new PixArtTransformer2DModel(config, META, dtype), device, seed);

    /// <summary>A VAE with random weights, built as <see cref="RandomTransformer"/> is.</summary>
    public static AutoencoderKL RandomVae(AutoencoderKLConfig config, Device device, ScalarType dtype, long seed = 0) =>
        FilledOnDevice(new AutoencoderKL(config, META, dtype), device, seed);

    /// <summary>Gives a meta-built module storage on <paramref name="device"/> and random values; disposes it on failure.</summary>
    static T FilledOnDevice<T>(T onMeta, Device device, long seed) where T : nn.Module
    {
        try
        {
            ParameterMaterializer.Materialize(onMeta, device);
            FillRandom(onMeta, seed);
            return onMeta;
        }
        catch { onMeta.Dispose(); throw; }
    }

    /// <summary>
    /// A T5 encoder with random weights: built with uninitialised storage (<see cref="T5EncoderModel.Create"/>), then
    /// filled in place (4.8 B parameters for XXL: an init pass per tensor, no second copy).
    /// </summary>
    public static T5EncoderModel RandomTextEncoder(T5Config config, Device device, ScalarType dtype, long seed = 0)
    {
        var model = T5EncoderModel.Create(config, device, dtype);
        try
        {
            FillRandom(model, seed);
            model.eval();
            return model;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>
    /// Fills every parameter in place with values of a trained network's scale, so that activations stay finite and
    /// timings are not distorted by NaN or denormal arithmetic: matrices U(±√(3 / fan_in)) (variance 1 / fan_in),
    /// norm weights 1, other vectors 0.
    /// </summary>
    /// <remarks>
    /// Drawing 4.8 B random numbers for T5-XXL takes minutes on a small CPU (libtorch's generator is serial, ~50 M/s in
    /// bf16), so one pool of <see cref="PoolSize"/> unit-variance values is drawn and each tensor is copied from it, scaled,
    /// starting at a different offset. The pool's length is odd, so consecutive rows of a matrix never repeat; the
    /// values are as good as independent for a benchmark, whose speed does not depend on them.
    /// </remarks>
    public static void FillRandom(nn.Module module, long seed)
    {
        using var noGrad = no_grad();
        // The scope holds every temporary until it is disposed: an unreferenced intermediate could otherwise be
        // finalized by a GC on another thread while libtorch still reads it (a crash seen in parallel tests).
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        // U(-√3, √3): unit variance. Drawn on the CPU in float32 so that a seed gives the same weights everywhere.
        var unit = rand(new long[] { PoolSize }, float32, generator: generator).mul_(2).sub_(1).mul_(Math.Sqrt(3));
        var pools = new Dictionary<(ScalarType, string), Tensor>();
        try
        {
            long index = 0;
            foreach (var (name, p) in module.named_parameters())
            {
                index++;
                if (p.dim() < 2)
                {
                    if (name.Contains("norm", StringComparison.OrdinalIgnoreCase) && name.EndsWith("weight", StringComparison.Ordinal)) p.fill_(1);
                    else p.zero_();
                    continue;
                }
                var key = (p.dtype, p.device.ToString());
                if (!pools.TryGetValue(key, out var pool)) pools[key] = pool = unit.to(p.dtype, p.device);
                double scale = 1 / Math.Sqrt(p.numel() / (double)p.shape[0]);
                using var flat = p.view(-1);
                long offset = (index * 7_919_003L) % PoolSize, done = 0, total = flat.numel();
                while (done < total)
                {
                    long n = Math.Min(total - done, PoolSize - offset);
                    using var target = flat.narrow(0, done, n);
                    using var source = pool.narrow(0, offset, n);
                    target.copy_(source).mul_(scale);
                    done += n;
                    offset = 0;
                }
            }
        }
        finally
        {
            foreach (var pool in pools.Values) pool.Dispose();
        }
    }

    /// <summary>Values in the pool <see cref="FillRandom"/> copies from (odd, about 8 M).</summary>
    public const long PoolSize = (1L << 23) + 9;
}
